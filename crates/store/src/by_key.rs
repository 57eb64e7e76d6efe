//! Reading the one row a key names, without SeaORM's `.one()`.
//!
//! `.one()` appends `LIMIT 1` with the 1 as a bound parameter. SQLite (3.51, as
//! `libsqlite3-sys` bundles it) plans a `LIMIT` from the value bound to it, so binding it again
//! expires the prepared statement and the next step parses and plans it anew: every `.one()`
//! was a fresh prepare (a twentieth of the service's CPU under `verdict-bench ingest`, perf,
//! from the one in the write path). A lookup by key finds at most one row without a limit.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Select, Selector, SelectorTrait};

/// `.by_key(db)`: the row a key lookup finds, if any; see the module docs.
pub(crate) trait ByKey {
    type Item;

    /// Runs the query, which must match at most one row, and returns that row.
    async fn by_key<C: ConnectionTrait>(self, db: &C) -> Result<Option<Self::Item>, DbErr>;
}

impl<E: EntityTrait> ByKey for Select<E> {
    type Item = E::Model;

    async fn by_key<C: ConnectionTrait>(self, db: &C) -> Result<Option<E::Model>, DbErr> {
        Ok(self.all(db).await?.into_iter().next())
    }
}

impl<S: SelectorTrait> ByKey for Selector<S> {
    type Item = S::Item;

    async fn by_key<C: ConnectionTrait>(self, db: &C) -> Result<Option<S::Item>, DbErr> {
        Ok(self.all(db).await?.into_iter().next())
    }
}

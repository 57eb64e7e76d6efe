//! `feed_counter`: the single row (id = 1) whose value is the last assigned feed position.
//! Writers bump it as the last statement of their transaction, which serialises position
//! assignment in commit order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum FeedCounter {
    Table,
    Id,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FeedCounter::Table)
                    .col(integer(FeedCounter::Id).primary_key())
                    .col(big_integer(FeedCounter::Value))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(FeedCounter::Table)
                    .columns([FeedCounter::Id, FeedCounter::Value])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FeedCounter::Table).to_owned())
            .await
    }
}

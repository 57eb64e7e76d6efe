//! "Nothing left behind": every column of every table, found from the database's own catalogue
//! (not a hand-written list, so a table or column added later is scanned too), searched for a
//! person's marker values.

use std::collections::BTreeMap;

use verdict_store::migration::sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use verdict_testkit::{TestApp, within};

/// What a scan saw: every scanned column, and the rows where a marker occurs.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// `table` → its columns, all scanned.
    pub(crate) columns: BTreeMap<String, Vec<String>>,
    /// `(table.column, marker)` → rows holding it.
    pub(crate) hits: BTreeMap<(String, String), i64>,
}

impl Scan {
    /// The markers found anywhere.
    pub(crate) fn found(&self) -> Vec<&str> {
        let mut found: Vec<&str> = self.hits.keys().map(|(_, m)| m.as_str()).collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// One line per table (columns scanned, rows with a marker), then every hit.
    pub(crate) fn report(&self, title: &str) -> String {
        let mut out = format!("{title}\n");
        for (table, columns) in &self.columns {
            let hits: i64 = self
                .hits
                .iter()
                .filter(|((column, _), _)| column.split('.').next() == Some(table.as_str()))
                .map(|(_, rows)| rows)
                .sum();
            out += &format!(
                "  {table:<18} {:>2} columns scanned, {hits} marker hits\n",
                columns.len()
            );
        }
        for ((column, marker), rows) in &self.hits {
            out += &format!("    hit: {column} holds {marker} in {rows} row(s)\n");
        }
        out
    }
}

/// Searches every column of every table of the app's database for each of `markers`.
pub(crate) async fn scan(app: &TestApp, markers: &[&str]) -> Scan {
    let db = within("connecting", Database::connect(app.database().url()))
        .await
        .expect("connect");
    let backend = db.get_database_backend();
    let mut scan = Scan::default();
    for (table, column, bytes) in columns(&db).await {
        let sql = match (backend, bytes) {
            (DbBackend::Sqlite, _) => format!(
                r#"SELECT COUNT(*) FROM "{table}" WHERE instr(CAST("{column}" AS BLOB), CAST(? AS BLOB)) > 0"#
            ),
            (_, true) => format!(
                r#"SELECT COUNT(*) FROM "{table}" WHERE position(convert_to($1, 'UTF8') in "{column}") > 0"#
            ),
            (_, false) => {
                format!(r#"SELECT COUNT(*) FROM "{table}" WHERE strpos("{column}"::text, $1) > 0"#)
            }
        };
        for marker in markers {
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    &sql,
                    [(*marker).into()],
                ))
                .await
                .expect("scan a column")
                .expect("a count");
            let rows: i64 = row.try_get_by_index(0).unwrap();
            if rows > 0 {
                scan.hits
                    .insert((format!("{table}.{column}"), (*marker).to_owned()), rows);
            }
        }
        scan.columns.entry(table).or_default().push(column);
    }
    let _ = db.close().await;
    scan
}

/// Every `(table, column, is binary)` of the database, from its catalogue.
async fn columns(db: &DatabaseConnection) -> Vec<(String, String, bool)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT m.name, p.name, lower(p.type) = 'blob' FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY 1, 2"
        }
        _ => {
            "SELECT table_name::text, column_name::text, data_type = 'bytea' \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY 1, 2"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .expect("read the catalogue");
    let columns: Vec<(String, String, bool)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                row.try_get_by_index(2).unwrap(),
            )
        })
        .collect();
    assert!(
        columns
            .iter()
            .any(|(t, c, _)| t == "deliveries" && c == "body"),
        "the catalogue lists the tables: {columns:?}"
    );
    columns
}

/// Asserts that none of `markers` is stored anywhere, printing the scan (run the tests with
/// `--no-capture` to read it).
pub(crate) async fn assert_forgotten(app: &TestApp, markers: &[&str], when: &str) {
    let scan = scan(app, markers).await;
    println!("{}", scan.report(&format!("table scan {when}:")));
    assert!(
        scan.hits.is_empty(),
        "personal data left behind {when}:\n{}",
        scan.report("")
    );
}

//! `case_persons`: the identity read from the document, apart from the case so it can be purged.

use std::fmt;

use sea_orm::entity::prelude::*;

/// One row of `case_persons`. Its `Debug` leaves the personal fields out.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_persons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub scan_ref: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub first_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub date_of_birth: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub nationality: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub sex: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub document_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub document_number: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub document_expiry: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub issuing_country: Option<String>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("scan_ref", &self.scan_ref)
            .finish_non_exhaustive()
    }
}

/// No relations are navigated through SeaORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! The PostgreSQL store's areas, one file per area trait (see `store/<area>.rs`).

mod campaigns;
mod contacts;
mod deliveries;
mod receipts;
mod schedules;
mod sessions;
mod tree;
mod users;

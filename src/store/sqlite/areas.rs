//! One `impl` per store area for SQLite; the SQL of the bigger areas sits beside it in `sqlite/`.

mod campaigns;
mod contacts;
mod deliveries;
mod receipts;
mod schedules;
mod tree;
mod users;

//! One `impl` per store area for SQLite (the schedules' is in `sqlite/schedule.rs`, beside its SQL);
//! the bigger areas still call SQL kept beside them in `sqlite/` (`import`, `fanout`, `governance`, ...).

mod campaigns;
mod contacts;
mod deliveries;
mod receipts;
mod tree;
mod users;

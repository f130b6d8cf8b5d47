//! Loa: a message broadcasting gateway for Vietnamese education (the electronic contact book).
//! Contacts and campaigns in a SQL store -> runs -> deliveries -> dispatcher -> providers -> receipts.

pub mod admin;
pub mod api;
pub mod app;
pub mod approval;
pub mod audience;
pub mod auth;
pub mod bench;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod health;
pub mod import;
pub mod links;
pub mod metrics;
pub mod preview;
pub mod render;
pub mod report;
pub mod scheduler;
pub mod store;
pub mod web;
pub mod webhooks;

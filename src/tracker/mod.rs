//! Trackers (BEP 3, 7, 12, 15, 23, 48): the tracker's logic, its HTTP and UDP servers, and
//! the client peers use to announce.
//!
//! `query` parses requests, `swarm` keeps who is in which swarm, `response` writes the
//! bencoded answers, `udp` reads and writes BEP 15 datagrams. None of them touch sockets or read the clock, so all of it is tested
//! with plain calls. The tracker never trusts an address a client reports about itself.

mod admission;
pub mod client;
mod connection;
pub mod guard;
mod http;
mod peers;
pub mod query;
pub mod response;
pub mod server;
mod socket;
mod stats;
pub mod swarm;
pub mod udp;

pub use client::{AnnounceParams, AnnounceResponse, ClientError, ScrapeStats, TrackerClient};
pub use query::{parse_announce, parse_scrape, Announce, Event, QueryError};
pub use server::{serve, serve_with_udp, ServerConfig, Shared};
pub use swarm::{AccessList, Announced, Refusal, ScrapeEntry, Totals, Tracker, TrackerConfig};

#[cfg(test)]
mod tests;

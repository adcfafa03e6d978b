//! Trackers: the HTTP tracker server and the announce/scrape client.
//!
//! Nothing here yet: the tracker issue fills it.

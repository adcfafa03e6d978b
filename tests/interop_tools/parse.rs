//! Parsers for the text that `aria2c -S` and `transmission-show` print, plus the helpers that
//! read their numbers: exact sizes in parentheses, sizes rounded for humans, magnet links.

use std::path::Path;
use std::process::Command;

use crate::tools::run;

/// `aria2c -S` (exact sizes in parentheses; paths as "./name/dir/file").
#[derive(Debug, Default)]
pub struct Aria2 {
    pub info_hash: String,
    pub name: String,
    pub mode: String,
    pub piece_count: u64,
    pub total_length: u64,
    pub trackers: Vec<Vec<String>>,
    pub web_seeds: Vec<String>,
    pub files: Vec<(String, u64)>,
    pub magnet: String,
}

pub fn aria2_show(torrent: &Path) -> Aria2 {
    let out = run(Command::new("aria2c").arg("-S").arg(torrent));
    let parsed = parse_aria2(&out);
    // aria2c exits 0 even for files it cannot read; it just prints no torrent information.
    assert!(
        !parsed.info_hash.is_empty(),
        "aria2c -S did not accept {}:\n{out}",
        torrent.display()
    );
    parsed
}

/// Parses `aria2c -S` output, e.g.
/// ```text
/// Mode: multi
/// Announce:
///  http://t1/ann
///  http://t2/ann http://t3/ann
/// Info Hash: 4f06acd09acf6df6f287ef60d52fc5e143dbf884
/// The Number of Pieces: 5
/// Total Length: 1.2MiB (1,300,006)
/// URL List:
///  http://ws/
/// Name: tree
/// Files:
/// idx|path/length
/// ===+====
///   1|./tree/a/b/x.bin
///    |292KiB (300,000)
/// ---+----
/// ```
pub fn parse_aria2(out: &str) -> Aria2 {
    #[derive(PartialEq)]
    enum Section {
        None,
        Announce,
        UrlList,
        Files,
    }
    let mut a = Aria2::default();
    let mut section = Section::None;
    let mut pending_path: Option<String> = None;
    for line in out.lines() {
        if section == Section::Files {
            if let Some((idx, rest)) = line.split_once('|') {
                if idx.trim().parse::<u64>().is_ok() {
                    pending_path = Some(rest.to_string());
                } else if idx.trim().is_empty() {
                    let path = pending_path
                        .take()
                        .unwrap_or_else(|| panic!("aria2c: size line without path: {line:?}"));
                    a.files.push((path, parenthesized_number(rest)));
                }
            }
            continue;
        }
        if let Some(entry) = line.strip_prefix(' ') {
            match section {
                Section::Announce => a
                    .trackers
                    .push(entry.split_whitespace().map(String::from).collect()),
                Section::UrlList => a.web_seeds.push(entry.trim().to_string()),
                _ => {}
            }
            continue;
        }
        section = Section::None;
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Announce" => section = Section::Announce,
            "URL List" => section = Section::UrlList,
            "Files" => section = Section::Files,
            "Info Hash" => a.info_hash = value.to_string(),
            "Name" => a.name = value.to_string(),
            "Mode" => a.mode = value.to_string(),
            "The Number of Pieces" => a.piece_count = parse_u64(value, "aria2c piece count"),
            "Total Length" => a.total_length = parenthesized_number(value),
            "Magnet URI" => a.magnet = value.to_string(),
            _ => {}
        }
    }
    a
}

/// "1.2MiB (1,300,006)" -> 1300006
fn parenthesized_number(text: &str) -> u64 {
    let inner = text
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no (number) in {text:?}"));
    parse_u64(&inner.replace(',', ""), text)
}

fn parse_u64(text: &str, what: &str) -> u64 {
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{what}: {text:?} is not a number: {e}"))
}

/// `transmission-show -u` (sizes rounded for humans; paths as "name/dir/file").
#[derive(Debug, Default)]
pub struct Transmission {
    pub name: String,
    pub info_hash: String,
    pub piece_count: u64,
    pub piece_size: String,
    pub total_size: String,
    pub private: Option<bool>,
    pub trackers: Vec<Vec<String>>,
    pub web_seeds: Vec<String>,
    /// (path, human size such as "300.0 kB")
    pub files: Vec<(String, String)>,
}

pub fn transmission_show(torrent: &Path) -> Transmission {
    // -u: files in torrent order instead of sorted by name.
    parse_transmission(&run(Command::new("transmission-show")
        .arg("-u")
        .arg(torrent)))
}

/// Parses `transmission-show` output, e.g.
/// ```text
/// GENERAL
///
///   Name: tree
///   Hash: 4f06acd09acf6df6f287ef60d52fc5e143dbf884
///   Piece Count: 5
///   Piece Size: 256.0 KiB
///   Total Size: 1.30 MB
///   Privacy: Private torrent
///
/// TRACKERS
///
///   Tier #1
///   http://t1/ann
///
/// WEBSEEDS
///
///   http://ws/
///
/// FILES
///
///   tree/a/b/x.bin (300.0 kB)
/// ```
pub fn parse_transmission(out: &str) -> Transmission {
    let mut t = Transmission::default();
    let mut section = "";
    for line in out.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            section = match line {
                "GENERAL" | "TRACKERS" | "WEBSEEDS" | "FILES" => line,
                _ => "",
            };
            continue;
        }
        let entry = line.trim();
        match section {
            "GENERAL" => {
                let Some((key, value)) = entry.split_once(": ") else {
                    continue;
                };
                match key {
                    "Name" => t.name = value.to_string(),
                    "Hash" => t.info_hash = value.to_string(),
                    "Piece Count" => {
                        t.piece_count = parse_u64(value, "transmission-show piece count")
                    }
                    "Piece Size" => t.piece_size = value.to_string(),
                    "Total Size" => t.total_size = value.to_string(),
                    "Privacy" => t.private = Some(value.starts_with("Private")),
                    _ => {}
                }
            }
            "TRACKERS" if entry.starts_with("Tier #") => t.trackers.push(Vec::new()),
            "TRACKERS" => t
                .trackers
                .last_mut()
                .expect("tracker before any tier")
                .push(entry.to_string()),
            "WEBSEEDS" => t.web_seeds.push(entry.to_string()),
            "FILES" => {
                let (path, size) = entry
                    .rsplit_once(" (")
                    .unwrap_or_else(|| panic!("transmission-show file line {line:?}"));
                t.files
                    .push((path.to_string(), size.trim_end_matches(')').to_string()));
            }
            _ => {}
        }
    }
    assert!(
        !t.info_hash.is_empty(),
        "no Hash in transmission-show output:\n{out}"
    );
    t
}

/// Whether transmission's rounded size ("300.0 kB", "1.00 MB", "256.0 KiB", "6 B") can stand
/// for `bytes`: within one step of its last printed digit.
pub fn human_size_matches(human: &str, bytes: u64) -> bool {
    if human == "None" {
        return bytes == 0;
    }
    let Some((number, unit)) = human.split_once(' ') else {
        return false;
    };
    let unit_bytes: f64 = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return false,
    };
    let Ok(value) = number.parse::<f64>() else {
        return false;
    };
    let decimals = number.split_once('.').map_or(0, |(_, frac)| frac.len()) as i32;
    let step = unit_bytes * 10f64.powi(-decimals);
    (value * unit_bytes - bytes as f64).abs() <= step + 1e-6
}

/// The btih hash of a magnet link, lowercased.
pub fn magnet_btih(magnet: &str) -> String {
    let start = magnet
        .find("xt=urn:btih:")
        .unwrap_or_else(|| panic!("no xt=urn:btih: in {magnet:?}"))
        + 12;
    magnet[start..]
        .split('&')
        .next()
        .unwrap()
        .to_ascii_lowercase()
}

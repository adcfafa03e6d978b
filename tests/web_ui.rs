//! The daemon's web page in a real browser: headless Chromium driven by Selenium
//! (tests/support/web_ui.py, Debian's chromium, chromium-driver and python3-selenium)
//! adds a torrent through the page's upload field, watches it reach 100% from our seeder
//! on loopback, unchecks and checks its file, adds a magnet link with a hostile name through
//! the form (it must show as text), saves a screenshot, and removes that torrent with the
//! page's button; then the bytes on disk are compared.

#[path = "support/daemon.rs"]
mod daemon;

use daemon::*;
use std::path::Path;
use std::process::Command;

const TOOLS: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromedriver",
    "/usr/bin/python3",
];

fn browser_present() -> bool {
    TOOLS.iter().all(|t| Path::new(t).exists())
        && Command::new("/usr/bin/python3")
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn the_page_adds_a_torrent_shows_it_complete_and_selects_files() {
    if !browser_present() {
        if std::env::var("BATTORRENT_SKIP_INTEROP").as_deref() == Ok("1") {
            eprintln!(
                "skipped: needs chromium, chromium-driver and python3-selenium \
                 (apt-get install chromium chromium-driver python3-selenium)"
            );
            return;
        }
        panic!(
            "chromium, chromium-driver or python3-selenium is missing: apt-get install \
             chromium chromium-driver python3-selenium, or set BATTORRENT_SKIP_INTEROP=1"
        );
    }
    let dir = scratch("web-ui");
    let (_tracker, url) = start_tracker(&dir);
    let (data, torrent_file) = make_torrent(&dir, "movie <b>&amp;.bin", 6 << 20, &url);
    // Slow enough that the page shows progress on the way.
    let _seeder = start_seeder(&dir, &[&torrent_file], "2M");
    let (state, dl) = (dir.join("state"), dir.join("dl"));
    let d = start_daemon(&dir, &state, &dl, "daemon.log", &[]);

    let screenshot = dir.join("web_ui.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/web_ui.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(format!("http://{}/", d.rpc))
        .arg(&torrent_file)
        .arg(&screenshot)
        .arg(&dir)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.proc.log()
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000);
    eprintln!("screenshot: {}", screenshot.display());
    let got = std::fs::read(dl.join("movie <b>&amp;.bin")).unwrap();
    assert!(got == data, "the downloaded bytes differ");
}

//! The dashboard in a real browser: headless Chromium against a running
//! service (the real server loop on a local port) with a seeded ledger. Logs
//! in with a token, reads the leaderboard, follows a person and a commit,
//! checks each page's numbers against the read API, saves a screenshot of
//! each page under `target/browser/`, and sees no console errors.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::TestDb;
use crate::support::browser::{Browser, chromium};
use crate::support::pages::{seeded, seeded_config, urlencode};

async fn api(base: &str, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn number(v: &Value) -> String {
    format!(
        "{:.3}",
        v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (.ci/run installs it: apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed");
        return;
    };
    let db = TestDb::sqlite();
    // A plain name: the screenshots go into the README (markup in names is
    // the handler tests' business).
    const ADA: &str = "Ada Lovelace";
    let (app, _pr, fix, reader) = seeded(seeded_config(&db, ADA)).await;
    // The reader's token is Ada's own: its login has a /me.
    assert!(
        app.state
            .store
            .set_token_person("reader", ADA)
            .await
            .unwrap()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run(listener, stop.clone()));
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");

    let mut browser = Browser::start(&binary).await;
    // Not logged in: the login form.
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for("the login page", |p| p.starts_with("/login"))
        .await;
    browser.screenshot(&shots.join("login.png")).await;
    browser.leaving();
    browser
        .eval(&format!(
            "document.getElementById('token').value = {}; document.querySelector('form[action=\"/login\"]').submit(); true",
            serde_json::to_string(&reader).unwrap()
        ))
        .await;
    browser.wait_for("the leaderboard", |p| p == "/").await;
    // The default is the last complete week; the seeded work is this week's.
    browser.goto(&format!("{base}/?week=current")).await;
    browser.screenshot(&shots.join("leaderboard.png")).await;

    // The leaderboard's numbers are the API's.
    let board = api(&base, &reader, "/api/v1/leaderboard?week=current").await;
    let rows = browser
        .eval("JSON.stringify([...document.querySelectorAll('#ranked tbody tr[data-person]')].map(tr => [tr.dataset.person, tr.querySelector('.value').textContent, tr.querySelector('.earned').textContent, tr.querySelector('.vested').textContent, tr.querySelector('.hygiene').textContent]))")
        .await;
    let rows: Vec<Vec<String>> = serde_json::from_str(rows.as_str().unwrap()).unwrap();
    let entries = board["entries"].as_array().unwrap();
    assert_eq!(rows.len(), entries.len(), "{rows:?} vs {board}");
    assert!(!rows.is_empty());
    for (row, entry) in rows.iter().zip(entries) {
        assert_eq!(row[0], entry["person"].as_str().unwrap());
        assert_eq!(row[1], number(&entry["value"]));
        assert_eq!(row[2], number(&entry["earned"]));
        assert_eq!(row[3], number(&entry["vested"]));
        assert_eq!(row[4], entry["hygiene"].to_string());
    }
    assert_eq!(rows[0][0], ADA);

    // Follow the person.
    browser.leaving();
    browser
        .eval("document.querySelector('#ranked tbody tr[data-person] a').click(); true")
        .await;
    browser
        .wait_for("the person page", |p| p.starts_with("/people/"))
        .await;
    browser.screenshot(&shots.join("person.png")).await;
    let balance = api(
        &base,
        &reader,
        &format!("/api/v1/people/{}/balance", urlencode(ADA)),
    )
    .await;
    for field in ["pending", "vested", "redeemed", "clawed_back", "available"] {
        let shown = browser
            .eval(&format!("document.getElementById('{field}').textContent"))
            .await;
        assert_eq!(shown.as_str().unwrap(), number(&balance[field]), "{field}");
    }
    let title = browser
        .eval("document.querySelector('h1').textContent")
        .await;
    assert_eq!(title.as_str().unwrap(), ADA);
    // On a phone (390 px) the page never scrolls sideways.
    browser
        .call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
    let width = browser.eval("document.documentElement.scrollWidth").await;
    browser.screenshot(&shots.join("person-390.png")).await;
    assert!(
        width.as_i64().unwrap() <= 390,
        "scrollWidth {width} at 390 px"
    );
    browser
        .call(
            "Emulation.clearDeviceMetricsOverride",
            serde_json::json!({}),
        )
        .await;

    // Follow the fix to its why page.
    browser.leaving();
    browser
        .eval(&format!(
            "[...document.querySelectorAll('#entries a')].find(a => a.href.endsWith('{fix}')).click(); true"
        ))
        .await;
    browser
        .wait_for("the commit page", |p| p.starts_with("/commits/"))
        .await;
    browser.screenshot(&shots.join("commit.png")).await;
    let tokens = api(
        &base,
        &reader,
        &format!("/api/v1/commits/acme/api/{fix}/tokens"),
    )
    .await;
    for field in ["tokens", "pending", "vested", "clawed_back"] {
        let shown = browser
            .eval(&format!("document.getElementById('{field}').textContent"))
            .await;
        assert_eq!(shown.as_str().unwrap(), number(&tokens[field]), "{field}");
    }
    let state = browser
        .eval("document.getElementById('state').textContent")
        .await;
    assert_eq!(state, tokens["state"]);

    // "My tokens": /me lists Ada's commits with the vest dates the API gives.
    browser.goto(&format!("{base}/me?week=current")).await;
    browser.screenshot(&shots.join("me.png")).await;
    let rows = browser
        .eval("JSON.stringify([...document.querySelectorAll('#commits tbody tr')].map(tr => [tr.dataset.sha, tr.querySelector('.state').textContent, tr.querySelector('.tokens').textContent, (tr.querySelector('.vests_at') || {}).textContent || '']))")
        .await;
    let rows: Vec<Vec<String>> = serde_json::from_str(rows.as_str().unwrap()).unwrap();
    assert!(!rows.is_empty(), "commit rows on /me");
    for row in &rows {
        let t = api(
            &base,
            &reader,
            &format!("/api/v1/commits/acme/api/{}/tokens", row[0]),
        )
        .await;
        assert_eq!(
            row[1],
            t["state"].as_str().unwrap().replace('_', " "),
            "{row:?}"
        );
        // Net tokens: what the rules give less what was taken back.
        let taken = t["clawed_back"].as_f64().unwrap();
        assert_eq!(
            row[2],
            format!("{:.3}", t["tokens"].as_f64().unwrap() - taken),
            "{row:?}"
        );
        if t["state"] == "pending" {
            // The page shows the date and time (UTC) of the API's `vests_at`.
            let vests = t["vests_at"].as_str().unwrap();
            assert!(row[3].starts_with(&vests[..10]), "{row:?} vs {vests}");
        }
    }

    // The other pages load too.
    browser.goto(&format!("{base}/repos/acme/api")).await;
    browser.screenshot(&shots.join("repo.png")).await;
    browser.goto(&format!("{base}/rules")).await;
    browser.screenshot(&shots.join("rules.png")).await;

    assert!(
        browser.errors.is_empty(),
        "console errors: {:#?}",
        browser.errors
    );
    drop(browser);
    stop.cancel();
    server.await.unwrap().unwrap();
}

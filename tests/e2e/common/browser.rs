//! A real headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which the test script installs): each [`Browser`] has its own
//! chromedriver in a process group of its own, killed whole when the browser is dropped
//! (so a failing test leaves no Chromium behind), and a fresh profile.

use super::{free_port, workspace};
use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a test waits for.
pub(crate) const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// A browser session and the runtime its calls run on.
pub(crate) struct Browser {
    pub(crate) client: Client,
    pub(crate) runtime: tokio::runtime::Runtime,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub(crate) fn open() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: run the README's test command, which installs Chromium"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("a profile folder");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let url = format!("http://127.0.0.1:{port}");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1280,900",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let client = runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                let session = ClientBuilder::new(connector)
                    .capabilities(capabilities.as_object().unwrap().clone())
                    .connect(&url)
                    .await;
                match session {
                    Ok(client) => break client,
                    Err(e) if Instant::now() > deadline => panic!("no browser session: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Browser {
            client,
            runtime,
            driver,
            _profile: profile,
        }
    }

    /// Runs `f` with the session, on the browser's runtime.
    pub(crate) fn with<T, F>(&self, f: impl FnOnce(Client) -> F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        self.runtime.block_on(f(self.client.clone()))
    }

    /// Goes to `url`.
    pub(crate) fn goto(&self, url: &str) {
        self.with(|c| async move { c.goto(url).await.expect("the page loads") });
    }

    /// Waits until an element matches the CSS `selector`; returns its text.
    pub(crate) fn wait_for(&self, selector: &str) -> String {
        self.with(|c| async move {
            let found = c
                .wait()
                .at_most(PAGE_TIMEOUT)
                .for_element(Locator::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"));
            found.text().await.unwrap_or_default()
        })
    }

    /// Waits until the element matching `selector` has text `wanted`.
    pub(crate) fn wait_for_text(&self, selector: &str, wanted: &str) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let text = self.with(|c| async move {
                match c.find(Locator::Css(selector)).await {
                    Ok(found) => found.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                }
            });
            if text.trim() == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{selector} shows `{text}`, not `{wanted}`"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The text of the element matching `selector` now, if there is one (and it was not
    /// swapped out while read).
    pub(crate) fn text(&self, selector: &str) -> Option<String> {
        self.with(|c| async move {
            let found = c.find(Locator::Css(selector)).await.ok()?;
            found.text().await.ok()
        })
    }

    /// The attribute `name` of the element matching `selector` now, if both exist.
    pub(crate) fn attribute(&self, selector: &str, name: &str) -> Option<String> {
        self.with(|c| async move {
            let found = c.find(Locator::Css(selector)).await.ok()?;
            found.attr(name).await.ok().flatten()
        })
    }

    /// Whether an element matches the CSS `selector` now.
    pub(crate) fn has(&self, selector: &str) -> bool {
        self.with(|c| async move { c.find(Locator::Css(selector)).await.is_ok() })
    }

    /// How many elements match the CSS `selector` now.
    pub(crate) fn count(&self, selector: &str) -> usize {
        self.with(|c| async move {
            c.find_all(Locator::Css(selector))
                .await
                .map_or(0, |found| found.len())
        })
    }

    /// Accepts the confirmation dialog the page shows, after checking it says `text`.
    pub(crate) fn accept_confirmation(&self, text: &str) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let shown = loop {
            match self.with(|c| async move { c.get_alert_text().await }) {
                Ok(shown) => break shown,
                Err(e) if Instant::now() > deadline => panic!("no confirmation dialog: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        assert_eq!(shown, text);
        self.with(|c| async move { c.accept_alert().await.expect("accepted") });
    }

    /// Empties the field matching `selector`.
    pub(crate) fn clear(&self, selector: &str) {
        self.with(|c| async move {
            let field = c.find(Locator::Css(selector)).await.expect("the field");
            field.clear().await.expect("cleared");
        });
    }

    /// Types `text` into the field matching `selector`.
    pub(crate) fn type_into(&self, selector: &str, text: &str) {
        self.with(|c| async move {
            let field = c.find(Locator::Css(selector)).await.expect("the field");
            field.send_keys(text).await.expect("typed");
        });
    }

    /// Clicks the element matching `selector`.
    pub(crate) fn click(&self, selector: &str) {
        self.with(|c| async move {
            let element = c.find(Locator::Css(selector)).await.expect("the element");
            element.click().await.expect("clicked");
        });
    }

    /// Saves a screenshot of the page as `target/screenshots/NAME.png`.
    pub(crate) fn screenshot(&self, name: &str) {
        let png = self.with(|c| async move { c.screenshot().await.expect("a screenshot") });
        let dir: PathBuf = workspace().join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot saved");
    }

    /// The accessibility violations axe-core finds on the page, as `id: help (targets)`.
    pub(crate) fn accessibility_violations(&self) -> Vec<String> {
        let axe = include_str!("../../fixtures/axe-4.14.1.min.js");
        self.with(|c| async move {
            c.execute(axe, Vec::new()).await.expect("axe-core loads");
            let found = c
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     axe.run(document).then(r => done(r.violations.map(v =>
                       v.id + ': ' + v.help + ' (' +
                       v.nodes.map(n => n.target.join(' ')).join(', ') + ')')));",
                    Vec::new(),
                )
                .await
                .expect("axe-core runs");
            found
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        // chromedriver's process group holds Chromium too: kill all of it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

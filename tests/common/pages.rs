//! townhall's pages in headless Chromium, driven step by step from a test: a client of
//! `scripts/clients/pages.mjs` (playwright-core; one JSON command per line, one JSON answer
//! per line). Each named page has its own browser context, so a host and an attendee can act
//! in turn while the test checks the server between their steps.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use super::root;

/// The browser, closed (then killed by pid if need be) when dropped.
pub struct Pages {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

impl Pages {
    pub fn launch() -> Pages {
        let mut child = Command::new("node")
            .arg(root().join("scripts/clients/pages.mjs"))
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (run scripts/setup.sh)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Pages { child, stdin, answers }
    }

    /// Runs one command; its value, or panics with the browser's error.
    pub fn run(&mut self, command: Value) -> Value {
        let timeout = command["timeout"].as_u64().unwrap_or(30_000);
        writeln!(self.stdin, "{command}").expect("pages.mjs is gone");
        self.stdin.flush().unwrap();
        let line = self
            .answers
            .recv_timeout(Duration::from_millis(timeout + 30_000))
            .unwrap_or_else(|_| panic!("pages.mjs did not answer {command}"));
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("pages.mjs said {line:?}: {e}"));
        assert_eq!(answer["ok"], true, "{command} failed: {}", answer["error"]);
        answer["value"].clone()
    }

    pub fn open(&mut self, page: &str, url: &str, (width, height): (u32, u32)) {
        self.run(json!({"op": "open", "page": page, "url": url, "width": width, "height": height}));
    }

    pub fn click(&mut self, page: &str, selector: &str) {
        self.run(json!({"op": "click", "page": page, "selector": selector}));
    }

    /// Types `value` into the input `selector` (replacing what it held), as a user would.
    pub fn fill(&mut self, page: &str, selector: &str, value: &str) {
        self.run(json!({"op": "fill", "page": page, "selector": selector, "value": value}));
    }

    /// Waits until the JS expression is truthy on `page`; returns its value.
    pub fn wait(&mut self, page: &str, expr: &str, timeout: Duration) -> Value {
        self.run(json!({"op": "wait", "page": page, "expr": expr, "timeout": timeout.as_millis() as u64}))
    }

    pub fn eval(&mut self, page: &str, expr: &str) -> Value {
        self.run(json!({"op": "eval", "page": page, "expr": expr}))
    }

    pub fn viewport(&mut self, page: &str, (width, height): (u32, u32)) {
        self.run(json!({"op": "viewport", "page": page, "width": width, "height": height}));
    }

    /// Reloads `page` in its own context (its storage kept), as a user pressing F5.
    pub fn reload(&mut self, page: &str) {
        self.run(json!({"op": "reload", "page": page}));
    }

    pub fn screenshot(&mut self, page: &str, path: &std::path::Path) {
        self.run(json!({"op": "screenshot", "page": page, "path": path}));
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "close"}));
        let _ = self.stdin.flush();
        let _ = self.answers.recv_timeout(Duration::from_secs(10));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/screenshots/` under the repository root (made if missing): where tests save the
/// pages' screenshots for people to look at.
pub fn screenshot_dir() -> std::path::PathBuf {
    let dir = root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The desktop and phone viewports the pages are checked at.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

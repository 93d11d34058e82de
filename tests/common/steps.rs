//! A page driver that reports steps as they happen: a Node script (playwright-core and Debian's
//! Chromium) printing one JSON object a line, `{"step": …}`, read as it comes so that a test can
//! act between steps. Killed by pid when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::root;

pub struct Steps {
    child: Child,
    steps: mpsc::Receiver<Value>,
}

impl Steps {
    /// Runs `node <script> <args…>` from the repository root.
    pub fn spawn(script: &str, args: &[&str]) -> Steps {
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("node {script}: {e}; run scripts/setup.sh"));
        let stdout = child.stdout.take().unwrap();
        let (tx, steps) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(step) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(step);
                }
            }
        });
        Steps { child, steps }
    }

    /// The next step, which must be `name`.
    pub fn step(&self, name: &str, timeout: Duration) -> Value {
        let step = self.steps.recv_timeout(timeout).unwrap_or_else(|_| panic!("the page never reached {name:?}"));
        assert_eq!(step["step"], name, "{step}");
        step
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A real SMTP server on loopback: aiosmtpd's Mailbox handler writing a Maildir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SmtpServer {
    child: Child,
    pub maildir: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether python3 with aiosmtpd is installed; when not, says so loudly (CI installs it).
pub fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "\n!!!!!!!! SKIPPED: python3 with aiosmtpd not found (pip install aiosmtpd); \
             the failsafe e-mail test did not run !!!!!!!!\n"
        );
    }
    ok
}

/// A failsafe e-mailing `recipients` through plain SMTP on loopback `port` (where a test's
/// [`SmtpServer`] listens, or nothing does), from the operator's usual sender.
pub fn loopback_failsafe(
    port: u16,
    recipients: &[&str],
    subject_prefix: Option<&str>,
) -> psa_operator::resolved::Failsafe {
    use psa_operator::resolved::{Failsafe, SmtpSettings, SmtpTls};
    Failsafe {
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            from: "psa-operator@msp.example".into(),
            username: None,
            password: None,
            tls: SmtpTls::None,
        },
        subject_prefix: subject_prefix.map(str::to_string),
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl SmtpServer {
    /// Starts aiosmtpd on `port` and waits (bounded) until it accepts connections.
    pub async fn start(port: u16, dir: &Path) -> SmtpServer {
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let server = SmtpServer { child, maildir };
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.maildir.join("new")) else {
            return vec![];
        };
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        out.sort();
        out
    }
}

/// The decoded subject of a raw message (lettre encodes non-ASCII subjects as RFC 2047 words).
pub fn subject(raw: &str) -> String {
    let mut lines = raw
        .lines()
        .skip_while(|l| !l.to_ascii_lowercase().starts_with("subject:"));
    let mut s = lines.next().unwrap_or_default()["subject:".len()..].to_string();
    for l in lines {
        if l.starts_with(' ') || l.starts_with('\t') {
            s.push_str(l);
        } else {
            break;
        }
    }
    // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
    let mut out = String::new();
    let mut prev_encoded = false;
    for w in s.split_whitespace() {
        let decoded = decode_word(w);
        let encoded = decoded.is_some();
        if !out.is_empty() && (!encoded || !prev_encoded) {
            out.push(' ');
        }
        out.push_str(&decoded.unwrap_or_else(|| w.to_string()));
        prev_encoded = encoded;
    }
    out
}

fn decode_word(w: &str) -> Option<String> {
    use base64::Engine;
    let lower = w.to_ascii_lowercase();
    let rest = lower.strip_prefix("=?utf-8?b?")?.strip_suffix("?=")?;
    let b64 = &w[w.len() - rest.len() - 2..w.len() - 2];
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The decoded body of a raw single-part message.
pub fn body(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (headers, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let encoding = headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-transfer-encoding:")
        })
        .map(|l| {
            l.split(':')
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let b = joined.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'=' && i + 2 < b.len() {
                    if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        _ => body.to_string(),
    }
}

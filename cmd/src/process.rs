//! Starting and stopping server processes on loopback ports: used by the end-to-end tests, the
//! benchmarks and the playground.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to start serving.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns a loopback port that was free a moment ago.
///
/// # Panics
///
/// If the OS has no free port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// A running `pd-server`, killed when dropped.
pub struct PdProcess {
    child: Option<Child>,
    binary: PathBuf,
    data_dir: PathBuf,
    port: u16,
}

impl PdProcess {
    /// Starts `binary` with its data in `data_dir`, listening on a free port, and waits until
    /// it answers HTTP health checks.
    ///
    /// # Errors
    ///
    /// A message with the end of the process's output if it exits or does not come up.
    pub fn start(binary: &Path, data_dir: &Path) -> Result<PdProcess, String> {
        let mut pd = PdProcess {
            child: None,
            binary: binary.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            port: free_port(),
        };
        pd.restart()?;
        Ok(pd)
    }

    /// `host:port` of the client URL.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Path of the file that collects the process's log and standard error.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    /// Starts the process again (same port, same data) if it is not running.
    ///
    /// # Errors
    ///
    /// As [`PdProcess::start`].
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open {}: {e}", self.log_path().display()))?;
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg("pd")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--client-urls")
            .arg(format!("http://{}", self.addr()))
            .arg("--peer-urls")
            .arg(format!("http://127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_until_serving()
    }

    fn wait_until_serving(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok((200, _)) = http_get(&self.addr(), "/pd/api/v1/health") {
                return Ok(());
            }
            let child = self.child.as_mut().expect("started");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "pd-server exited with {status}: {}",
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "pd-server did not serve within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns the last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit; returns whether it exited
    /// cleanly (status 0).
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        terminate(&child);
        child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for PdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped; it only sends a signal.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Sends an HTTP/1.1 request and returns the status code and body.
///
/// # Errors
///
/// A connection or protocol error.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// `GET` shorthand for [`http_request`].
///
/// # Errors
///
/// As [`http_request`].
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, "")
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

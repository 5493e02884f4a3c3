//! A private PostgreSQL server for tests: a fresh cluster (`initdb`) in a temporary directory,
//! listening on a free loopback port, stopped and removed when dropped.
//!
//! The binaries are found in `ASSAY_PG_BIN`, on `PATH`, or in Debian's
//! `/usr/lib/postgresql/VERSION/bin` (the test command installs Debian's `postgresql` when none
//! is there). PostgreSQL refuses to run as root: as root, the server runs as the `postgres`
//! user that Debian's package creates.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running test server.
#[derive(Debug)]
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    /// Whether it also speaks TLS (`server.crt` and `server.key` in its data directory).
    tls: bool,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("ASSAY_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return dir;
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("no PostgreSQL binaries (initdb, pg_ctl): install Debian's postgresql (scripts/test.sh does) or set ASSAY_PG_BIN")
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl TempPostgres {
    /// Creates and starts a server; panics with the server's own output when it cannot.
    pub fn start() -> TempPostgres {
        TempPostgres::start_with(None)
    }

    /// Like [`TempPostgres::start`], the server also speaking TLS with this certificate and key
    /// (PEM).
    pub fn start_with_tls(cert: &str, key: &str) -> TempPostgres {
        TempPostgres::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> TempPostgres {
        let bin = find_bin();
        let dir = tempfile::Builder::new().prefix("assay-pg-").tempdir().expect("a temporary directory");
        let run_as = is_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let status = Command::new("chown").arg(format!("{user}:")).arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown {user} {}", dir.path().display());
        }
        let pg = TempPostgres { dir, bin, run_as, tls: tls.is_some(), port: free_port() };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync", "--locale=C.UTF-8", "--encoding=UTF8"],
        );
        if let Some((cert, key)) = tls {
            let data = std::path::Path::new(&data);
            std::fs::write(data.join("server.crt"), cert).expect("server.crt");
            std::fs::write(data.join("server.key"), key).expect("server.key");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .expect("chmod server.key");
            if let Some(user) = &pg.run_as {
                let status = Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(data.join("server.crt"))
                    .arg(data.join("server.key"))
                    .status()
                    .expect("chown");
                assert!(status.success(), "chown the server's certificate");
            }
        }
        pg.start_again();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd.args(args).current_dir(self.dir.path()).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again, after [`TempPostgres::stop`]), waiting until it accepts
    /// connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=200{}",
            self.port,
            if self.tls { " -c ssl=on" } else { "" }
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// The URL of database `name`, created if it does not exist yet.
    pub fn database(&self, name: &str) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connecting to the test server");
        let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).expect("pg_database");
        if exists.is_none() {
            client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("CREATE DATABASE");
        }
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The directory the cluster lives in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = match &self.run_as {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        };
    }
}

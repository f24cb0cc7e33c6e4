//! `contrib/`, tried as an operator installs it: the systemd unit passes
//! `systemd-analyze verify` and rates 2.0 or less in `systemd-analyze
//! security`; the cron job has a name cron.d runs and, run as cron runs it,
//! purges, logs through `logger -t sessionctl`, and skips while another run
//! holds its lock.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sessionctl::record::now;
use sessionctl::{Record, Store};

use crate::docs::{installed, manpath};
use crate::harness::pg_server::missing;

const UNIT: &str = "contrib/sessionctl-serve-cron.service";
const CRON: &str = "contrib/cron.d/sessionctl-purge";
/// Where the unit and the cron job expect the binary.
const INSTALLED_BINARY: &str = "/usr/local/bin/sessionctl";
const LOCK: &str = "/run/lock/sessionctl-purge.lock";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    if !installed("systemd-analyze") {
        return missing::<()>("systemd-analyze (Debian package `systemd`)").unwrap_or_default();
    }
    // verify opens the Documentation= man page with man(1).
    if !installed("man") {
        return missing::<()>("man (Debian package `man-db`)").unwrap_or_default();
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo().join(UNIT)).unwrap();
    assert!(unit.contains(&format!("ExecStart={INSTALLED_BINARY} serve-cron ")), "{unit}");
    // verify also checks that ExecStart's program exists: the same unit,
    // running the binary just built, and finding the pages in man/.
    let copy = dir.path().join("sessionctl-serve-cron.service");
    std::fs::write(&copy, unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_sessionctl"))).unwrap();
    let output =
        Command::new("systemd-analyze").arg("verify").arg(&copy).env("MANPATH", manpath(dir.path())).output().unwrap();
    assert!(output.status.success() && text(&output).is_empty(), "systemd-analyze verify:\n{}", text(&output));

    let output =
        Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(repo().join(UNIT)).output().unwrap();
    let report = text(&output);
    assert!(output.status.success(), "systemd-analyze security:\n{report}");
    // "→ Overall exposure level for sessionctl-serve-cron.service: 1.1 OK 🙂"
    let exposure: f64 = report
        .lines()
        .find_map(|line| {
            line.split_once("Overall exposure level for ")?.1.split_once(": ")?.1.split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{report}");
}

/// The cron file: its variable assignments, and the job's schedule, user
/// and command.
struct CronJob {
    env: Vec<(String, String)>,
    schedule: String,
    user: String,
    command: String,
}

fn cron_job() -> CronJob {
    let text = std::fs::read_to_string(repo().join(CRON)).unwrap();
    let mut env = Vec::new();
    let mut jobs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match line.split_once('=') {
            Some((name, value)) if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
                env.push((name.to_owned(), value.to_owned()))
            }
            _ => jobs.push(line),
        }
    }
    assert_eq!(jobs.len(), 1, "one job in {CRON}: {jobs:?}");
    let fields: Vec<&str> = jobs[0].splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7, "schedule, user, command: {}", jobs[0]);
    CronJob { env, schedule: fields[..5].join(" "), user: fields[5].to_owned(), command: fields[6].to_owned() }
}

#[test]
fn the_cron_job_has_a_name_cron_d_runs_and_locks_and_logs() {
    // cron (and run-parts) skip files in /etc/cron.d whose names hold a dot.
    for entry in std::fs::read_dir(repo().join("contrib/cron.d")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "cron.d ignores {name}");
    }
    let job = cron_job();
    assert_eq!(job.schedule, "*/15 * * * *");
    assert_eq!(job.user, "myapp");
    assert!(job.command.starts_with(&format!("flock -n {LOCK} sessionctl purge-expired ")), "{}", job.command);
    assert!(job.command.ends_with(" 2>&1 | logger -t sessionctl"), "{}", job.command);
    assert!(job.env.iter().any(|(name, _)| name == "SESSIONCTL_DATABASE_URL"));
    if installed("shellcheck") {
        let mut child = Command::new("shellcheck")
            .args(["-s", "sh", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{}\n", job.command).as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "shellcheck on the cron command:\n{}", text(&output));
    } else {
        eprintln!("shellcheck is not installed: the cron command is not checked by it");
    }
}

fn expired_session() -> Record {
    let t = now();
    Record {
        id: crate::harness::new_key(),
        user_id: Some("alice".into()),
        data: json!({"cart": ["book"]}).as_object().cloned().unwrap().into(),
        created_at: t - chrono::Duration::hours(2),
        updated_at: t - chrono::Duration::hours(2),
        expires_at: t - chrono::Duration::hours(1),
        version: 1,
    }
}

/// Runs the cron job's command as cron would (`sh -c`, the file's
/// variables), with `sessionctl` the binary just built, a `logger` that
/// appends its arguments and input to `syslog`, the database at `url` and
/// the lock in the temp dir (a test keeps out of /run/lock).
fn run_cron_job(dir: &Path, url: &str, syslog: &Path) -> std::process::Output {
    let bin = dir.join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sessionctl"), bin.join("sessionctl")).unwrap();
        let logger = format!("#!/bin/sh\n{{ echo \"logger $*\"; cat; }} >> '{}'\n", syslog.display());
        std::fs::write(bin.join("logger"), logger).unwrap();
        let executable = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(bin.join("logger"), executable).unwrap();
    }
    let job = cron_job();
    let path = job.env.iter().find(|(name, _)| name == "PATH").map_or("/usr/bin:/bin", |(_, value)| value);
    Command::new("/bin/sh")
        .arg("-c")
        .arg(job.command.replace(LOCK, &lock_path(dir).to_string_lossy()))
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", format!("{}:{path}", bin.display()))
        .env("SESSIONCTL_DATABASE_URL", url)
        .output()
        .unwrap()
}

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("sessionctl-purge.lock")
}

#[tokio::test]
async fn the_cron_job_purges_logs_to_syslog_and_skips_while_a_run_holds_the_lock() {
    if !installed("flock") {
        return missing::<()>("flock (Debian package `util-linux`)").unwrap_or_default();
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let store = Store::connect(&url).await.unwrap();
    let first = expired_session();
    assert!(store.create(&first).await.unwrap());
    let syslog = dir.path().join("syslog");

    let output = run_cron_job(dir.path(), &url, &syslog);
    assert!(output.status.success(), "{}", text(&output));
    let logged = std::fs::read_to_string(&syslog).unwrap();
    let mut lines = logged.lines();
    assert_eq!(lines.next(), Some("logger -t sessionctl"), "{logged}");
    let summary: Value =
        serde_json::from_str(lines.next().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {logged}"));
    assert_eq!(summary["deleted"], 1, "{logged}");
    assert_eq!(lines.next(), None, "one line a run: {logged}");
    assert!(store.stored(&first.id).await.unwrap().is_none());

    // A run still going holds the lock: the next one skips, purging and
    // logging nothing.
    let second = expired_session();
    assert!(store.create(&second).await.unwrap());
    let mut holder = Command::new("flock").arg(lock_path(dir.path())).arg("cat").stdin(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Command::new("flock").arg("-n").arg(lock_path(dir.path())).arg("true").status().unwrap().success() {
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&syslog).unwrap();
    run_cron_job(dir.path(), &url, &syslog);
    assert_eq!(std::fs::read_to_string(&syslog).unwrap(), "logger -t sessionctl\n");
    assert!(store.stored(&second.id).await.unwrap().is_some(), "purged despite the lock");
    drop(holder.stdin.take());
    holder.wait().unwrap();

    // Once it is free, the next run purges again.
    std::fs::remove_file(&syslog).unwrap();
    run_cron_job(dir.path(), &url, &syslog);
    assert!(store.stored(&second.id).await.unwrap().is_none());
}

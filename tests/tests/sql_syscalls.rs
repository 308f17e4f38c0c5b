//! TESTPLAN SQL-01 and SQL-05 at the system-call level: while analysts and admins send SQL
//! that names files, symlinks, `..` paths and URLs, `strace` follows every thread of the node
//! and records each `open*` and `connect` call. The queries must be refused *and* nothing may
//! have been opened or connected to.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use unmogrowp_tests::TestNode;

#[test]
fn refused_sql_opens_no_file_and_no_connection() {
    assert!(
        Command::new("strace").arg("-V").output().is_ok(),
        "strace missing: scripts/setup.sh installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let admin = n.admin_token();
    let trick = dir.path().join("innocent.parquet");
    std::os::unix::fs::symlink("/etc/passwd", &trick).unwrap();
    let dotdot = format!("{}/../../../../etc/passwd", n.data_dir.display());

    let trace = dir.path().join("trace.txt");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,openat2,connect,accept4,accept",
        ])
        .arg("-o")
        .arg(&trace)
        .arg("-p")
        .arg(n.pid().unwrap().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace");
    // Attached once a new connection shows up as an accept in the trace.
    let t0 = Instant::now();
    loop {
        assert_eq!(n.get("/health").status, 200);
        let seen = std::fs::read_to_string(&trace).unwrap_or_default();
        if seen.contains("accept") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "strace did not attach"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let sqls = [
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        format!(
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
            trick.display()
        ),
        format!("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{dotdot}'"),
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://169.254.169.254/latest/'"
            .to_string(),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'http://127.0.0.1:9/x.csv'".to_string(),
        "SELECT * FROM '/etc/passwd'".to_string(),
        "SELECT * FROM 'file:///etc/passwd'".to_string(),
        format!("SELECT * FROM '{}'", trick.display()),
        format!("SELECT * FROM '{dotdot}'"),
        "SELECT * FROM 'http://169.254.169.254/latest/meta-data'".to_string(),
        "SELECT * FROM read_parquet('/etc/passwd')".to_string(),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM parquet_metadata('/etc/passwd')".to_string(),
        "COPY (SELECT 1) TO '/tmp/sql-01-must-not-exist.csv'".to_string(),
    ];
    for sql in &sqls {
        let a = n.call(
            "POST",
            "/api/analytics/query",
            Some(&admin),
            Some(json!({ "sql": sql })),
        );
        assert_eq!(a.status, 400, "{sql} must be refused: {}", a.body);
    }
    // Let strace write out everything, then detach it.
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill").arg(strace.id().to_string()).status();
    let _ = strace.wait();
    let trace = std::fs::read_to_string(&trace).unwrap();
    let opened: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("open") && !l.contains("resumed"))
        .collect();
    for bad in ["passwd", "innocent", "/../", "sql-01-must-not-exist"] {
        let hit: Vec<&&str> = opened.iter().filter(|l| l.contains(bad)).collect();
        assert!(hit.is_empty(), "a file named by SQL was opened: {hit:?}");
    }
    let connects: Vec<&str> = trace.lines().filter(|l| l.contains("connect(")).collect();
    assert!(connects.is_empty(), "outbound connections: {connects:?}");
    assert!(
        !std::path::Path::new("/tmp/sql-01-must-not-exist.csv").exists(),
        "COPY wrote a file"
    );
    eprintln!(
        "SQL-01/05: {} refused queries, {} traced syscalls, {} opens (none named by SQL), 0 connects",
        sqls.len(),
        trace.lines().count(),
        opened.len()
    );
}

//! Unit tests of the Procfile and `.env` readers: foreman's conventions (comments, blank
//! lines, `sh -c`, PORT per process, `.env` quoting) and each bad line at FILE:LINE:COL.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;
use super::procfile::{parse_env, parse_procfile};

fn procfile(
    text: &str,
    env: &BTreeMap<String, String>,
    base: u16,
) -> Result<Vec<super::PoolSpec>, ConfigError> {
    parse_procfile(Path::new("Procfile"), text, env, base, Path::new("/app"))
}

#[track_caller]
fn located(
    result: Result<impl std::fmt::Debug, ConfigError>,
    line: usize,
    col: usize,
    needle: &str,
) {
    match result {
        Err(ConfigError::At(l)) => {
            assert_eq!((l.line, l.col), (line, col), "{}", l.message);
            assert!(
                l.message.contains(needle),
                "{:?} lacks {needle:?}",
                l.message
            );
        }
        other => panic!("expected an error at {line}:{col}, got {other:?}"),
    }
}

#[test]
fn one_pool_per_line_with_port_and_env() {
    let env = BTreeMap::from([("MODE".to_string(), "prod".to_string())]);
    let text = "# the app\n\nweb: bundle exec rails s -p $PORT\n  # indented comment\r\nworker_2:python3 worker.py  \n";
    let pools = procfile(text, &env, 5000).expect("valid");
    let summary: Vec<(&str, &[String])> = pools
        .iter()
        .map(|p| (p.name.as_str(), p.argv.as_slice()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "web",
                &[
                    "sh".to_string(),
                    "-c".into(),
                    "bundle exec rails s -p $PORT".into()
                ][..]
            ),
            (
                "worker_2",
                &["sh".to_string(), "-c".into(), "python3 worker.py".into()][..]
            ),
        ]
    );
    let env_of = |i: usize| pools[i].env.iter().cloned().collect::<BTreeMap<_, _>>();
    assert_eq!(env_of(0)["PORT"], "5000");
    assert_eq!(env_of(1)["PORT"], "5100");
    assert_eq!(env_of(1)["MODE"], "prod");
    assert_eq!(pools[0].cwd.as_deref(), Some(Path::new("/app")));
    assert_eq!(pools[0].size, 1);
}

#[test]
fn port_overrides_the_env_file_and_follows_the_base() {
    let env = BTreeMap::from([("PORT".to_string(), "1".to_string())]);
    let pools = procfile("a: x\nb: y\nc: z\n", &env, 8000).expect("valid");
    let ports: Vec<String> = pools
        .iter()
        .map(|p| {
            p.env
                .iter()
                .find(|(k, _)| k == "PORT")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(ports, vec!["8000", "8100", "8200"]);
    located(procfile("a: x\nb: y\n", &env, 65500), 2, 1, "over 65535");
}

#[test]
fn bad_procfile_lines_are_located() {
    let env = BTreeMap::new();
    located(
        procfile("web: ok\nthis line has no colon\n", &env, 5000),
        2,
        1,
        "NAME: command",
    );
    located(
        procfile("web app: x\n", &env, 5000),
        1,
        4,
        "letters, digits",
    );
    located(procfile(": x\n", &env, 5000), 1, 1, "no name");
    located(procfile("web:   \n", &env, 5000), 1, 4, "command is empty");
    located(
        procfile("web: a\nweb: b\n", &env, 5000),
        2,
        1,
        "already defined",
    );
    located(
        procfile("# only comments\n\n", &env, 5000),
        1,
        1,
        "no `NAME: command`",
    );
}

#[test]
fn env_files_as_foreman_reads_them() {
    let text = "# comment\n\nexport A=1\nB = two words # a comment\nC='lit $X \\n'\nD=\"x\\ny \\\"q\\\"\"  # c\nE=\nF=a#b\n";
    let env = parse_env(Path::new(".env"), text).expect("valid");
    let want: BTreeMap<String, String> = [
        ("A", "1"),
        ("B", "two words"),
        ("C", "lit $X \\n"),
        ("D", "x\ny \"q\""),
        ("E", ""),
        ("F", "a#b"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, want);
}

#[test]
fn bad_env_lines_are_located() {
    let at = |text: &str| parse_env(Path::new(".env"), text);
    located(at("A=1\nnot a pair\n"), 2, 1, "KEY=VALUE");
    located(at("1A=x\n"), 1, 1, "a .env name");
    located(at("export  B-C=x\n"), 1, 9, "a .env name");
    located(at("A='open\n"), 1, 3, "no closing '");
    located(at("A=\"open\n"), 1, 3, "no closing \"");
    located(at("A=\"x\" y\n"), 1, 3, "after the closing quote");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Random text (and Procfile-shaped pieces) never panics either reader.
    #[test]
    fn random_procfiles_and_env_files_never_panic(
        text in "\\PC{0,200}",
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "web: x\n", ": x\n", "é: y\n", "a:\n", "# c\n", "\n", "\r\n", "A='x\n",
                "export B=\"\\\n", "C=1 # c\n", "=\n", "é=1\n", "D=\"x\" y\n",
            ]),
            0..10,
        ),
    ) {
        let env = BTreeMap::new();
        for candidate in [text.clone(), parts.concat()] {
            if let Err(ConfigError::At(l)) = procfile(&candidate, &env, 65000) {
                proptest::prop_assert!(l.line >= 1 && l.col >= 1);
            }
            let _ = parse_env(Path::new(".env"), &candidate);
        }
    }
}

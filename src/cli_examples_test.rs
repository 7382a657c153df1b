//! The CI examples (`examples/ci/*.yml`) stay true to the binary: each file
//! parses as YAML, and every `lifeboat …` command in its strings parses with
//! the binary's own argument parser, so a renamed or mistyped flag fails
//! here rather than in a user's pipeline. The deployment examples
//! (`examples/deploy/`) likewise: the systemd unit's and the image's command
//! lines parse, and the files keep the shape their README promises.

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

use crate::Cli;

const EXAMPLES: [&str; 2] = [
    "examples/ci/github-actions.yml",
    "examples/ci/gitlab-ci.yml",
];

/// Keys whose values are shell: GitHub's `run`, GitLab's `script`,
/// `before_script` and `after_script`.
const SHELL_KEYS: [&str; 4] = ["run", "script", "before_script", "after_script"];

/// The shell scripts of `doc`, at any depth.
fn scripts<'a>(doc: &'a Yaml, out: &mut Vec<&'a str>) {
    match doc {
        Yaml::Array(items) => items.iter().for_each(|i| scripts(i, out)),
        Yaml::Hash(map) => {
            for (k, v) in map {
                if k.as_str().is_some_and(|k| SHELL_KEYS.contains(&k)) {
                    shell(v, out);
                } else {
                    scripts(v, out);
                }
            }
        }
        Yaml::String(_)
        | Yaml::Real(_)
        | Yaml::Integer(_)
        | Yaml::Boolean(_)
        | Yaml::Alias(_)
        | Yaml::Null
        | Yaml::BadValue => {}
    }
}

/// The lines of a shell value: one string, or a list of them.
fn shell<'a>(v: &'a Yaml, out: &mut Vec<&'a str>) {
    match v {
        Yaml::String(s) => out.push(s),
        Yaml::Array(items) => items.iter().for_each(|i| shell(i, out)),
        Yaml::Hash(_)
        | Yaml::Real(_)
        | Yaml::Integer(_)
        | Yaml::Boolean(_)
        | Yaml::Alias(_)
        | Yaml::Null
        | Yaml::BadValue => {}
    }
}

/// A shell script cut into simple commands, each a list of words: quotes
/// removed, `$VAR` kept as a plain word, `\`-newline joined, comments,
/// redirections (with their target) and keywords before a command
/// (`then`, `else`, `do`, `!`) dropped; `|`, `&`, `;`, parentheses and line
/// ends separate commands. Enough shell for the lines of a CI file.
fn commands(script: &str) -> Vec<Vec<String>> {
    let mut sh = Words::default();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(x) => sh.push(x),
            },
            '\'' => {
                sh.in_word = true;
                chars
                    .by_ref()
                    .take_while(|&x| x != '\'')
                    .for_each(|x| sh.push(x));
            }
            '"' => {
                sh.in_word = true;
                while let Some(x) = chars.next() {
                    match x {
                        '"' => break,
                        '\\' => chars.next().into_iter().for_each(|x| sh.push(x)),
                        x => sh.push(x),
                    }
                }
            }
            '#' if !sh.in_word => {
                chars.by_ref().find(|&x| x == '\n');
                sh.end_command();
            }
            '<' | '>' => {
                // `2>`: the descriptor is part of the redirection.
                if sh.in_word && sh.word.chars().all(|d| d.is_ascii_digit()) {
                    sh.word.clear();
                    sh.in_word = false;
                }
                sh.end_word();
                while chars.next_if(|&x| x == '>' || x == '&').is_some() {}
                // `2>&1` names a descriptor; otherwise the next word is a file.
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while chars.next_if(char::is_ascii_digit).is_some() {}
                } else {
                    sh.skip_next = true;
                }
            }
            '|' | '&' | ';' | '(' | ')' | '\n' => sh.end_command(),
            c if c.is_whitespace() => sh.end_word(),
            c => sh.push(c),
        }
    }
    sh.end_command();
    sh.commands
}

#[derive(Default)]
struct Words {
    commands: Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    in_word: bool,
    /// The next word is a redirection's file, not an argument.
    skip_next: bool,
}

impl Words {
    fn push(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn end_word(&mut self) {
        if self.in_word {
            let word = std::mem::take(&mut self.word);
            if !std::mem::take(&mut self.skip_next) {
                self.words.push(word);
            }
        }
        self.in_word = false;
    }

    fn end_command(&mut self) {
        self.end_word();
        let mut cmd = std::mem::take(&mut self.words);
        let keywords = cmd
            .iter()
            .take_while(|w| matches!(w.as_str(), "then" | "else" | "do" | "!"))
            .count();
        cmd.drain(..keywords);
        if !cmd.is_empty() {
            self.commands.push(cmd);
        }
    }
}

/// The `lifeboat` commands of a YAML document, or why it is not YAML.
fn lifeboat_commands(text: &str) -> Result<Vec<Vec<String>>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    for doc in &docs {
        let mut found = Vec::new();
        scripts(doc, &mut found);
        for s in found {
            all.extend(commands(s).into_iter().filter(|c| c[0] == "lifeboat"));
        }
    }
    Ok(all)
}

/// Each command the parser refuses, with clap's reason.
fn refused(commands: &[Vec<String>]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| {
            Cli::try_parse_from(c).err().map(|e| {
                let why = e.to_string();
                format!(
                    "{}: {}",
                    c.join(" "),
                    why.lines().next().unwrap_or_default()
                )
            })
        })
        .collect()
}

fn example(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn every_lifeboat_command_of_the_ci_examples_parses() {
    for path in EXAMPLES {
        let found = lifeboat_commands(&example(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let lines: Vec<String> = found.iter().map(|c| c.join(" ")).collect();
        // What each example must do; also proves the commands were found.
        for needed in [
            "lifeboat fmt --check",
            "lifeboat plan --out plan.json --markdown --detailed-exitcode --deny-destroy",
            "lifeboat show plan.json",
            "lifeboat plan --out plan.json --detailed-exitcode",
            "lifeboat apply plan.json --lock-timeout 10m",
        ] {
            assert!(
                lines.iter().any(|l| l == needed),
                "{path} runs `{needed}`; it runs {lines:#?}"
            );
        }
        assert!(
            lines.iter().any(|l| l.starts_with("lifeboat validate --")),
            "{path} validates: {lines:#?}"
        );
        assert_eq!(refused(&found), Vec::<String>::new(), "in {path}");
    }
    let github = example(EXAMPLES[0]);
    assert!(github.contains("lifeboat validate --format github"));
    assert!(github.contains("<!-- lifeboat-plan -->"));
    assert!(example(EXAMPLES[1]).contains("<!-- lifeboat-plan -->"));
}

#[test]
fn a_mistyped_flag_in_a_ci_file_is_caught() {
    let yaml = "jobs:\n  plan:\n    steps:\n      - run: |\n          set +e\n          lifeboat plan --out plan.json \\\n            --detailed-exitcod > plan.md || code=$?\n";
    let found = lifeboat_commands(yaml).unwrap();
    assert_eq!(
        found,
        vec![vec![
            "lifeboat",
            "plan",
            "--out",
            "plan.json",
            "--detailed-exitcod"
        ]]
    );
    let refused = refused(&found);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("--detailed-exitcod"), "{refused:?}");
    // And a file that is not YAML is reported as such.
    assert!(lifeboat_commands("run: [unclosed").is_err());
}

#[test]
fn the_shell_words_are_read_as_the_shell_would() {
    let words = |s: &str| commands(s);
    assert_eq!(
        words("if [ -s p ]; then lifeboat show \"$PLAN\" 2>&1; fi # lifeboat nope"),
        vec![
            vec!["if", "[", "-s", "p", "]"],
            vec!["lifeboat", "show", "$PLAN"],
            vec!["fi"],
        ]
    );
    assert_eq!(
        words("lifeboat validate --json > v.json || true\nlifeboat -C 'my dir' fmt --check"),
        vec![
            vec!["lifeboat", "validate", "--json"],
            vec!["true"],
            vec!["lifeboat", "-C", "my dir", "fmt", "--check"],
        ]
    );
}

/// The value of each `KEY=` line of a systemd unit.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// A Dockerfile instruction's JSON-array argument (`ENTRYPOINT ["…"]`) in
/// the last stage.
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(instruction)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{instruction} {line}: {e}"))
}

#[test]
fn the_deployment_examples_run_commands_the_binary_takes_and_keep_their_shape() {
    let unit = example("examples/deploy/lifeboat.service");
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(unit.contains(section), "the unit has {section}");
    }
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    let mut words: Vec<String> = exec[0].split_whitespace().map(str::to_string).collect();
    assert_eq!(words[0], "/usr/local/bin/lifeboat");
    words[0] = "lifeboat".into();
    assert!(words.contains(&"run".to_string()), "{words:?}");
    assert_eq!(refused(&[words]), Vec::<String>::new());
    let user = unit_values(&unit, "User");
    assert!(
        user.len() == 1 && user[0] != "root",
        "a user of its own: {user:?}"
    );
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(
        unit_values(&unit, "TimeoutStopSec").len(),
        1,
        "a drain timeout"
    );

    let docker = example("examples/deploy/Dockerfile");
    let stages: Vec<&str> = docker.split("\nFROM ").collect();
    assert!(stages.len() >= 3, "a build stage and a run stage");
    let last = stages[stages.len() - 1];
    // No shell in the final image: nothing may need one at run time.
    assert!(
        !last.lines().any(|l| l.starts_with("RUN ")),
        "the run stage runs nothing: {last}"
    );
    let user = last
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the run stage names its user");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    let entry = exec_form(&docker, "ENTRYPOINT");
    assert_eq!(entry[0], "/usr/local/bin/lifeboat");
    for tail in [exec_form(&docker, "CMD"), vec!["plan".to_string()]] {
        let mut words: Vec<String> = vec!["lifeboat".into()];
        words.extend(entry[1..].iter().cloned());
        words.extend(tail);
        assert_eq!(refused(&[words]), Vec::<String>::new());
    }

    // Neither file carries a credential.
    for text in [&unit, &docker] {
        for secret in ["AKIA", "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY="] {
            assert!(!text.contains(secret), "{secret} in a deployment example");
        }
    }
}

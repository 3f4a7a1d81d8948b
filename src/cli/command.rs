//! The words after `werify ctl`: parsing one command line (`add HOST`, `operation FILE
//! --wait`, …) into a [`CtlCommand`], with the seed tool's error texts. Shared by single
//! commands and by batch mode (`-`). Running a command is in [`crate::cli::ctl`].

use std::time::Duration;

use crate::checks::duration::parse_duration;

/// Default operation deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// One parsed `ctl` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlCommand {
    Add(String),
    Del(String),
    List {
        active: bool,
        inactive: bool,
    },
    Operation {
        file: String,
        wait: bool,
        nodes: Vec<String>,
        tags: Vec<(String, String)>,
        deadline: Duration,
    },
    Get {
        handle: String,
        wait: bool,
    },
    Refresh {
        wait: bool,
    },
}

/// The command table: name, positional argument count, description (for usage).
pub const COMMANDS: &[(&str, usize, &str)] = &[
    ("add", 1, "Adds a host to the mesh"),
    ("del", 1, "Removes a host from the mesh"),
    ("list", 0, "Lists hosts in the mesh"),
    ("listactive", 0, "Lists active hosts in the mesh"),
    ("listinactive", 0, "Lists inactive hosts in the mesh"),
    ("operation", 1, "Runs operations from file on every host"),
    ("get", 1, "Get status of operation with handle"),
    ("refresh", 0, "Start health check on all hosts"),
];

/// The "Available commands" block of the usage text, seed layout.
pub fn commands_usage() -> String {
    let mut s = String::from("Available commands:\n");
    for (name, _, desc) in COMMANDS {
        s.push_str(&format!("{name:>15}  {desc}\n"));
    }
    s.push_str("\nCommands can also be specified from stdin using \"-\".\n");
    s
}

/// Parses the words of one command.
pub fn parse_command(words: &[String]) -> Result<CtlCommand, String> {
    let Some((name, rest)) = words.split_first() else {
        return Err("no command given".into());
    };
    let Some(&(_, nargs, _)) = COMMANDS.iter().find(|(n, _, _)| n == name) else {
        return Err(format!("Unknown command {name}"));
    };
    let (positional, options): (Vec<&String>, Vec<&String>) = {
        let mut pos = Vec::new();
        let mut opts = Vec::new();
        let mut it = rest.iter();
        while let Some(w) = it.next() {
            if w.starts_with("--") {
                opts.push(w);
                if takes_value(w)
                    && !w.contains('=')
                    && let Some(v) = it.next()
                {
                    opts.push(v);
                }
            } else {
                pos.push(w);
            }
        }
        (pos, opts)
    };
    if positional.len() != nargs {
        return Err(format!(
            "Invalid number of arguments for {name}: Expected {nargs} but got {}",
            positional.len()
        ));
    }
    let mut opts = Options::parse(name, &options)?;
    let arg = positional
        .first()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let cmd = match name.as_str() {
        "add" => CtlCommand::Add(arg),
        "del" => CtlCommand::Del(arg),
        "list" => CtlCommand::List {
            active: true,
            inactive: true,
        },
        "listactive" => CtlCommand::List {
            active: true,
            inactive: false,
        },
        "listinactive" => CtlCommand::List {
            active: false,
            inactive: true,
        },
        "operation" => CtlCommand::Operation {
            file: arg,
            wait: opts.take_flag("--wait"),
            nodes: opts.take_all("--node"),
            tags: opts
                .take_all("--tag")
                .into_iter()
                .map(|t| match t.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => Err(format!("invalid --tag {t:?}: expected KEY=REGEX")),
                })
                .collect::<Result<_, _>>()?,
            deadline: match opts.take_last("--deadline") {
                Some(d) => parse_duration(&d)?,
                None => DEFAULT_DEADLINE,
            },
        },
        "get" => CtlCommand::Get {
            handle: arg,
            wait: opts.take_flag("--wait"),
        },
        "refresh" => CtlCommand::Refresh {
            wait: opts.take_flag("--wait"),
        },
        _ => return Err(format!("Unknown command {name}")),
    };
    opts.finish(name)?;
    Ok(cmd)
}

fn takes_value(flag: &str) -> bool {
    matches!(flag, "--node" | "--tag" | "--deadline")
}

fn valid_options(command: &str) -> &'static [&'static str] {
    match command {
        "operation" => &["--wait", "--node", "--tag", "--deadline"],
        "get" | "refresh" => &["--wait"],
        _ => &[],
    }
}

/// The `--flag [value]` words of one command, consumed as the command asks for them.
struct Options {
    items: Vec<(String, Option<String>)>,
}

impl Options {
    fn parse(command: &str, words: &[&String]) -> Result<Options, String> {
        let valid = valid_options(command);
        let mut items = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            let (flag, inline) = match w.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (w, None),
            };
            if !valid.contains(&flag) {
                return Err(if valid.is_empty() {
                    format!("unknown option {flag} for {command}: it takes no options")
                } else {
                    format!(
                        "unknown option {flag} for {command}; valid options: {}",
                        valid.join(", ")
                    )
                });
            }
            let value =
                if takes_value(flag) {
                    match inline {
                        Some(v) => Some(v),
                        None => {
                            i += 1;
                            Some(words.get(i).map(|s| s.to_string()).ok_or_else(|| {
                                format!("option {flag} of {command} needs a value")
                            })?)
                        }
                    }
                } else if inline.is_some() {
                    return Err(format!("option {flag} of {command} takes no value"));
                } else {
                    None
                };
            items.push((flag.to_string(), value));
            i += 1;
        }
        Ok(Options { items })
    }

    fn take_flag(&mut self, flag: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|(f, _)| f != flag);
        self.items.len() != before
    }

    fn take_all(&mut self, flag: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.items.retain(|(f, v)| {
            if f == flag {
                out.extend(v.clone());
                false
            } else {
                true
            }
        });
        out
    }

    fn take_last(&mut self, flag: &str) -> Option<String> {
        self.take_all(flag).pop()
    }

    fn finish(self, command: &str) -> Result<(), String> {
        match self.items.first() {
            None => Ok(()),
            Some((f, _)) => Err(format!("option {f} does not apply to {command}")),
        }
    }
}

/// Splits a batch-mode line into words; `None` for blank lines and `#` comments.
pub fn split_batch_line(line: &str) -> Option<Vec<String>> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    Some(trimmed.split_whitespace().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn seed_commands_parse() {
        assert_eq!(
            parse_command(&words("add 127.0.0.2")),
            Ok(CtlCommand::Add("127.0.0.2".into()))
        );
        assert_eq!(
            parse_command(&words("listactive")),
            Ok(CtlCommand::List {
                active: true,
                inactive: false
            })
        );
        assert_eq!(
            parse_command(&words("get gxm1-abcd --wait")),
            Ok(CtlCommand::Get {
                handle: "gxm1-abcd".into(),
                wait: true
            })
        );
    }

    #[test]
    fn operation_options_parse() {
        let cmd = parse_command(&words(
            "operation ops.json --node ^127 --tag role=web --deadline 3s --wait",
        ))
        .unwrap();
        assert_eq!(
            cmd,
            CtlCommand::Operation {
                file: "ops.json".into(),
                wait: true,
                nodes: vec!["^127".into()],
                tags: vec![("role".into(), "web".into())],
                deadline: Duration::from_secs(3),
            }
        );
    }

    #[test]
    fn seed_error_texts() {
        assert_eq!(
            parse_command(&words("frobnicate")),
            Err("Unknown command frobnicate".into())
        );
        assert_eq!(
            parse_command(&words("add")),
            Err("Invalid number of arguments for add: Expected 1 but got 0".into())
        );
        assert_eq!(
            parse_command(&words("list extra")),
            Err("Invalid number of arguments for list: Expected 0 but got 1".into())
        );
        assert!(
            parse_command(&words("list --wait"))
                .unwrap_err()
                .contains("takes no options")
        );
        assert!(
            parse_command(&words("operation f --deadline"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse_command(&words("operation f --tag novalue"))
                .unwrap_err()
                .contains("KEY=REGEX")
        );
    }

    #[test]
    fn batch_lines_split_on_any_whitespace() {
        assert_eq!(split_batch_line("  # comment"), None);
        assert_eq!(split_batch_line("   "), None);
        assert_eq!(
            split_batch_line(" del \t 127.0.0.3 "),
            Some(words("del 127.0.0.3"))
        );
    }
}

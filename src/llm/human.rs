//! `human`: a person plays the model. The prompt is printed to stderr (so
//! stdout stays data) and the reply is read from stdin up to a line holding
//! only `.`.

use std::io::{BufRead, Write};
use std::sync::Mutex;

use super::metered::{Backend, Outcome, Pricing, Reply};
use super::{LlmError, Request, RoleName};

pub struct Human {
    io: Mutex<(Box<dyn BufRead + Send>, Box<dyn Write + Send>)>,
}

impl Human {
    pub fn new() -> Human {
        Human::with_io(
            Box::new(std::io::BufReader::new(std::io::stdin())),
            Box::new(std::io::stderr()),
        )
    }

    pub fn with_io(input: Box<dyn BufRead + Send>, output: Box<dyn Write + Send>) -> Human {
        Human {
            io: Mutex::new((input, output)),
        }
    }
}

fn show(out: &mut dyn Write, req: &Request, role: RoleName) -> std::io::Result<()> {
    let stops = if req.stop.is_empty() {
        String::new()
    } else {
        format!(", stop at {:?}", req.stop)
    };
    writeln!(
        out,
        "\n======== you are the {} model (up to {} tokens{stops}) ========",
        role.as_str(),
        req.max_tokens
    )?;
    for m in &req.messages {
        writeln!(out, "[{}]\n{}", m.role.as_str(), m.content)?;
    }
    if !req.tools.is_empty() {
        let names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
        writeln!(out, "[tools offered, answer in text] {}", names.join(", "))?;
    }
    writeln!(
        out,
        "======== type your reply; end it with a line holding only \".\" ========"
    )?;
    out.flush()
}

impl Backend for Human {
    fn provider(&self) -> &'static str {
        "human"
    }

    fn pricing(&self) -> Pricing<'_> {
        Pricing::Free
    }

    fn call(&self, req: &Request, role: RoleName) -> Outcome {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let (input, output) = &mut *io;
        if let Err(e) = show(output.as_mut(), req, role) {
            return Outcome::from(Err(LlmError::Other(format!(
                "cannot show the prompt to the human model: {e}"
            ))));
        }
        let mut lines: Vec<String> = Vec::new();
        let mut ended = false;
        loop {
            let mut line = String::new();
            match input.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let line = line.trim_end_matches(['\n', '\r']);
                    if line == "." {
                        ended = true;
                        break;
                    }
                    lines.push(line.to_string());
                }
                Err(e) => {
                    return Outcome::from(Err(LlmError::Other(format!(
                        "cannot read the human model's reply: {e}"
                    ))))
                }
            }
        }
        if !ended && lines.is_empty() {
            return Outcome::from(Err(LlmError::Other(
                "the human model's input ended before a reply (stdin closed); type the reply \
                 and a line holding only \".\""
                    .into(),
            )));
        }
        Outcome::from(Ok(Reply {
            text: lines.join("\n"),
            tool_calls: Vec::new(),
            usage: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reply_ends_at_a_lone_dot_and_the_next_call_reads_on() {
        let out = Shared::default();
        let input = "first line\n  .  \nsecond\n.\nnext reply\n.\n";
        let h = Human::with_io(Box::new(std::io::Cursor::new(input)), Box::new(out.clone()));
        let req = Request::prompt("What now?", 100);
        let r = h.call(&req, RoleName::Main).result.unwrap();
        assert_eq!(r.text, "first line\n  .  \nsecond");
        let r = h.call(&req, RoleName::Fast).result.unwrap();
        assert_eq!(r.text, "next reply");
        let shown = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            shown.contains("What now?") && shown.contains("fast model"),
            "{shown}"
        );
        let e = h.call(&req, RoleName::Main).result.unwrap_err().to_string();
        assert!(e.contains("stdin closed"), "{e}");
    }
}

//! The forwarder that runs inside the sandbox (`mlab gateway-forward`):
//! listens on 127.0.0.1:PORT in the sandbox's own network namespace and
//! relays every TCP connection, byte for byte in both directions, to a new
//! connection on the gateway's unix socket (bound into the sandbox). It
//! knows nothing of HTTP, keys or models; one thread per direction, the
//! standard library only, so it starts in a few milliseconds.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Listens on `127.0.0.1:port` (0: any free port), calls `ready` with the
/// address once listening, then relays connections until the process ends.
pub fn forward(socket: &Path, port: u16, ready: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("the gateway forwarder cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener
        .local_addr()
        .context("the gateway forwarder cannot read its own address")?;
    // Fail early and clearly when the socket is not there.
    anyhow::ensure!(
        socket.exists(),
        "the gateway socket {} does not exist: is the gateway running, and is the socket \
         bound into the sandbox?",
        socket.display()
    );
    ready(addr);
    for conn in listener.incoming() {
        match conn {
            Ok(tcp) => {
                let socket = socket.to_path_buf();
                std::thread::spawn(move || {
                    if let Err(e) = relay(tcp, &socket) {
                        tracing::debug!("gateway forwarder: {e}");
                    }
                });
            }
            Err(e) => tracing::warn!("gateway forwarder: cannot accept a connection: {e}"),
        }
    }
    Ok(())
}

/// Copies `tcp` to a new connection on `socket` and back; each direction's
/// end is passed on as a half-close of the other side.
fn relay(tcp: TcpStream, socket: &PathBuf) -> io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let unix = match UnixStream::connect(socket) {
        Ok(u) => u,
        Err(e) => {
            let _ = tcp.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    let (mut tcp_r, mut tcp_w) = (tcp.try_clone()?, tcp);
    let (mut unix_r, mut unix_w) = (unix.try_clone()?, unix);
    let up = std::thread::spawn(move || {
        let r = io::copy(&mut tcp_r, &mut unix_w);
        let _ = unix_w.shutdown(Shutdown::Write);
        r
    });
    let down = io::copy(&mut unix_r, &mut tcp_w);
    let _ = tcp_w.shutdown(Shutdown::Write);
    let up = up
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("relay thread panicked")));
    down.and(up).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    #[test]
    fn bytes_pass_both_ways_and_a_half_close_reaches_the_other_side() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gw.sock");
        let server = UnixListener::bind(&sock).unwrap();
        // Echo server: reads to EOF (the client's half-close), then answers.
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(b"got:").unwrap();
            s.write_all(&got).unwrap();
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let sock2 = sock.clone();
        std::thread::spawn(move || forward(&sock2, 0, |a| tx.send(a).unwrap()));
        let addr = rx.recv().unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        c.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"got:hello");
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it() {
        let err = forward(Path::new("/nonexistent/gw.sock"), 0, |_| {}).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/gw.sock"), "{err}");
    }
}

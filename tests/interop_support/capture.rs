//! A Forward server made of obsim's own protocol code (`obsim::proto::forward`): it answers
//! the shared-key handshake with `ServerAuth`, decodes what a real client sends with the
//! aggregator's `StreamDecoder`, acks every chunk that asks, and keeps each connection's
//! raw bytes (the `fixtures/wire/` captures) and decoded frames.
//!
//! Why, next to `obsim serve aggregator`: it shows the wire itself — which mode, which
//! options, which time encoding each client really sends — and works without the serve
//! subcommand; the serve tests then show the same bytes end to end into Redis.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use obsim::proto::forward::{ClientFrame, EventFrame, Limits, ServerAuth, StreamDecoder, encode_ack};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How long the accept loop sleeps when no client is waiting.
const READ_POLL: Duration = Duration::from_millis(100);
/// The server's `self_hostname` in the handshake (must differ from the client's).
pub const SERVER_HOSTNAME: &str = "obsim-capture";
/// Bytes read per `read` call.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// What one client connection sent and how it went.
#[derive(Debug, Default, Clone)]
pub struct Connection {
    /// Every byte the client sent, in order.
    pub raw: Vec<u8>,
    /// The event frames decoded, in order.
    pub frames: Vec<EventFrame>,
    /// Decoder errors, as text (a frame obsim refuses).
    pub errors: Vec<String>,
    /// The handshake's verdict when the server asked for one: `Some(true)` accepted.
    pub auth_accepted: Option<bool>,
    /// Acks written.
    pub acks_sent: usize,
}

/// A running capture server.
pub struct CaptureServer {
    /// Where clients connect.
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<Arc<Mutex<Connection>>>>>,
    acceptor: Option<thread::JoinHandle<Vec<thread::JoinHandle<()>>>>,
}

impl CaptureServer {
    /// Listens on 127.0.0.1:0; with `shared_key`, every connection starts with a HELO.
    pub fn start(shared_key: Option<&str>) -> CaptureServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("capture server binds loopback");
        let address = listener.local_addr().expect("capture server address");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<Arc<Mutex<Connection>>>>> = Arc::default();
        let auth = shared_key.map(|key| ServerAuth {
            hostname: SERVER_HOSTNAME.to_owned(),
            shared_key: key.to_owned(),
            users: Vec::new(),
        });
        let acceptor = {
            let (stop, connections) = (stop.clone(), connections.clone());
            thread::spawn(move || accept_loop(&listener, &stop, &connections, auth.as_ref()))
        };
        CaptureServer { address, stop, connections, acceptor: Some(acceptor) }
    }

    /// Stops (after the client is done) and returns each connection's capture.
    pub fn finish(mut self) -> Vec<Connection> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            for handle in acceptor.join().expect("capture acceptor") {
                handle.join().expect("capture connection thread");
            }
        }
        let connections = self.connections.lock().expect("capture connections");
        connections.iter().map(|connection| connection.lock().expect("capture connection").clone()).collect()
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Accepts until stopped; each connection on its own thread.
fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    connections: &Mutex<Vec<Arc<Mutex<Connection>>>>,
    auth: Option<&ServerAuth>,
) -> Vec<thread::JoinHandle<()>> {
    let mut handles = Vec::new();
    loop {
        // Read before accepting: a client that connected, sent and exited just before the
        // stop is still waiting in the backlog, and is taken before the loop ends.
        let stopping = stop.load(Ordering::SeqCst);
        match listener.accept() {
            Ok((stream, _)) => {
                let connection = Arc::new(Mutex::new(Connection::default()));
                connections.lock().expect("capture connections").push(connection.clone());
                let auth = auth.cloned();
                let seed = handles.len() as u64;
                handles.push(thread::spawn(move || serve_connection(stream, &connection, auth.as_ref(), seed)));
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock && stopping => break,
            Err(error) if error.kind() == ErrorKind::WouldBlock => thread::sleep(READ_POLL),
            Err(error) => panic!("capture accept failed: {error}"),
        }
    }
    handles
}

/// One connection: handshake if asked, then frames until the client closes (every test
/// finishes the server after its client exited, so each connection has ended by then).
fn serve_connection(mut stream: TcpStream, connection: &Mutex<Connection>, auth: Option<&ServerAuth>, seed: u64) {
    stream.set_nonblocking(false).expect("blocking connection");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut pending_helo = auth.map(|auth| {
        let helo = auth.helo(&mut ChaCha8Rng::seed_from_u64(seed), true);
        let mut out = Vec::new();
        helo.encode(&mut out);
        stream.write_all(&out).expect("HELO written");
        (auth, helo)
    });
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let mut connection = connection.lock().expect("capture connection");
        connection.raw.extend_from_slice(&buffer[..read]);
        if let Err(error) = decoder.feed(&buffer[..read]) {
            connection.errors.push(error.to_string());
            return;
        }
        if !take_frames(&mut stream, &mut decoder, &mut connection, &mut pending_helo) {
            return;
        }
    }
}

/// Drains whole frames: answers a PING, keeps events and acks them. `false`: close.
fn take_frames(
    stream: &mut TcpStream,
    decoder: &mut StreamDecoder,
    connection: &mut Connection,
    pending_helo: &mut Option<(&ServerAuth, obsim::proto::forward::Helo)>,
) -> bool {
    loop {
        let frame = match decoder.next_client_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return true,
            Err(error) => {
                connection.errors.push(error.to_string());
                continue;
            }
        };
        let mut out = Vec::new();
        match frame {
            ClientFrame::Ping(ping) => {
                let Some((auth, helo)) = pending_helo.take() else {
                    connection.errors.push("PING without a HELO".to_owned());
                    return false;
                };
                let pong = auth.answer_ping(&helo, &ping);
                pong.encode(&mut out);
                connection.auth_accepted = Some(pong.auth_result);
                if stream.write_all(&out).is_err() || !pong.auth_result {
                    return false;
                }
            }
            ClientFrame::Events(events) => {
                if pending_helo.is_some() {
                    connection.errors.push("events before the handshake".to_owned());
                    return false;
                }
                if let Some(chunk) = events.ack_chunk() {
                    encode_ack(&mut out, chunk);
                    if stream.write_all(&out).is_err() {
                        return false;
                    }
                    connection.acks_sent += 1;
                }
                connection.frames.push(events);
            }
        }
    }
}

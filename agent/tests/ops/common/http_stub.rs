//! A real HTTP/1.1 server on loopback, small enough to read at a glance: it records each
//! request and answers with what the test's closure returns. One connection at a time,
//! `Connection: close` on every response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Far more than any request needs; only there so a broken test cannot hang the suite.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// One request as the stub received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What the stub answers.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            body: body.into(),
        }
    }
}

type Respond = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

pub struct HttpStub {
    url: String,
    requests: Receiver<Recorded>,
}

impl HttpStub {
    /// Starts serving; `respond` gets each request and its 0-based arrival number.
    pub fn start(respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (sender, requests) = mpsc::channel();
        let respond: Arc<Respond> = Arc::new(respond);
        std::thread::spawn(move || serve(listener, respond, sender));
        HttpStub { url, requests }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next request received, in arrival order.
    pub fn next_request(&self) -> Recorded {
        self.requests
            .recv_timeout(HANG_GUARD)
            .expect("a request before the hang guard")
    }

    /// Requests received so far that nobody took yet.
    pub fn received_so_far(&self) -> Vec<Recorded> {
        self.requests.try_iter().collect()
    }
}

fn serve(listener: TcpListener, respond: Arc<Respond>, sender: Sender<Recorded>) {
    for (index, stream) in listener.incoming().enumerate() {
        let Ok(stream) = stream else { continue };
        let Some(request) = read_request(&stream) else {
            continue;
        };
        let reply = respond(&request, index);
        if sender.send(request).is_err() {
            return; // the test is over
        }
        let _ = write_reply(stream, &reply);
    }
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    stream.set_read_timeout(Some(HANG_GUARD)).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn write_reply(mut stream: TcpStream, reply: &Reply) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} Stub\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(reply.body.as_bytes())?;
    stream.flush()
}

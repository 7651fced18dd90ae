//! Two Linux network namespaces joined by a veth pair, for the kernel TCP differential.
//!
//! Why namespaces and not loopback: a cut must drop packets between two real TCP stacks
//! silently, as a partition does, while both applications keep running; on loopback nothing
//! can be cut without the sender noticing. Everything is made with `ip` and `tc` (iproute2)
//! and removed again by [`LinkedNamespaces`]'s `Drop`, which also runs when a test panics.
//!
//! The cut is a `blackhole` root qdisc on both veth ends: it drops every outgoing packet and
//! reports success to the sender, so the sending TCP sees nothing but missing ACKs, like a
//! partition (measured: retransmissions back off and `TCP_USER_TIMEOUT` fires; no local send
//! error). `netem`, `iptables` and `nft` are absent from this kernel/container; the
//! `blackhole` qdisc is built in. Bringing a veth end down instead would not do: the local
//! stack then knows the route is gone.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;

/// The client's address inside its namespace (RFC 5737 documentation range: never a host
/// outside the two namespaces).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The server's address inside its namespace.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Which end of the link a thread joins.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    /// The namespace holding [`CLIENT_ADDR`].
    Client,
    /// The namespace holding [`SERVER_ADDR`].
    Server,
}

/// One namespace and its end of the veth pair.
#[derive(Debug)]
struct End {
    /// The namespace's name under /run/netns.
    name: String,
    /// The veth interface inside it.
    interface: String,
    /// Whether `ip netns add` succeeded (so `Drop` deletes only what exists).
    created: bool,
}

/// Two namespaces joined by a veth pair; deleted on drop (the veth pair goes with them).
#[derive(Debug)]
pub struct LinkedNamespaces {
    /// The client's end.
    client: End,
    /// The server's end.
    server: End,
}

/// Runs a command, returning its stderr as the error; `what` names the step in the message.
fn run(program: &str, args: &[&str], what: &str) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("{what}: cannot run `{program}` ({error}); install iproute2 (`ip`, `tc`)"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what}: `{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

impl LinkedNamespaces {
    /// Creates `obsim-<tag>-<pid>-{c,s}` joined by a veth pair with [`CLIENT_ADDR`] and
    /// [`SERVER_ADDR`], both up. The error says what failed and what the test needs (root, or
    /// CAP_SYS_ADMIN + CAP_NET_ADMIN, and iproute2); whatever was made is removed again.
    pub fn create(tag: &str) -> Result<Self, String> {
        assert!(tag.len() <= 4, "tag {tag:?}: interface names must stay within 15 bytes");
        let pid = std::process::id();
        let end = |suffix: char| End {
            name: format!("obsim-{tag}-{pid}-{suffix}"),
            interface: format!("o{tag}{pid}{suffix}"),
            created: false,
        };
        let mut pair = LinkedNamespaces { client: end('c'), server: end('s') };
        pair.build().map_err(|error| {
            format!(
                "kernel_tcp needs to create network namespaces (root, or CAP_SYS_ADMIN and \
                 CAP_NET_ADMIN, and iproute2 installed): {error}"
            )
        })?;
        Ok(pair)
    }

    /// The steps of [`Self::create`]; `self`'s `Drop` undoes the ones that ran.
    fn build(&mut self) -> Result<(), String> {
        run("ip", &["netns", "add", &self.client.name], "create the client namespace")?;
        self.client.created = true;
        run("ip", &["netns", "add", &self.server.name], "create the server namespace")?;
        self.server.created = true;
        let (client, server) = (&self.client, &self.server);
        run(
            "ip",
            &[
                "link",
                "add",
                &client.interface,
                "netns",
                &client.name,
                "type",
                "veth",
                "peer",
                "name",
                &server.interface,
                "netns",
                &server.name,
            ],
            "create the veth pair",
        )?;
        for (end, addr) in [(client, CLIENT_ADDR), (server, SERVER_ADDR)] {
            let cidr = format!("{addr}/24");
            run("ip", &["-n", &end.name, "addr", "add", &cidr, "dev", &end.interface], "address an end")?;
            run("ip", &["-n", &end.name, "link", "set", &end.interface, "up"], "bring an end up")?;
            run("ip", &["-n", &end.name, "link", "set", "lo", "up"], "bring loopback up")?;
        }
        Ok(())
    }

    /// Moves the calling thread (only it: a thread's network namespace is its own) into
    /// `side`'s namespace; sockets it creates afterwards live there.
    pub fn enter(&self, side: Side) -> Result<(), String> {
        let end = self.end(side);
        let path = format!("/run/netns/{}", end.name);
        let file = File::open(&path).map_err(|error| format!("open {path}: {error}"))?;
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .map_err(|error| format!("setns(CLONE_NEWNET) into {}: {error}", end.name))
    }

    /// Cuts the link both ways: every packet either end sends from now on is dropped silently.
    pub fn cut(&self) -> Result<(), String> {
        for end in [&self.client, &self.server] {
            run("tc", &["-n", &end.name, "qdisc", "replace", "dev", &end.interface, "root", "blackhole"], "cut")?;
        }
        Ok(())
    }

    /// Repairs a [`Self::cut`]: the ends get their default (no) queue back.
    pub fn repair(&self) -> Result<(), String> {
        for end in [&self.client, &self.server] {
            run("tc", &["-n", &end.name, "qdisc", "del", "dev", &end.interface, "root"], "repair")?;
        }
        Ok(())
    }

    /// The two namespaces' names (a test checks they are gone after a drop).
    pub fn names(&self) -> [String; 2] {
        [self.client.name.clone(), self.server.name.clone()]
    }

    /// The end on `side`.
    fn end(&self, side: Side) -> &End {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }
}

impl Drop for LinkedNamespaces {
    /// Deletes both namespaces (their veth ends with them), also while a test unwinds.
    fn drop(&mut self) {
        for end in [&self.client, &self.server] {
            if end.created
                && let Err(error) = run("ip", &["netns", "del", &end.name], "delete a namespace")
            {
                eprintln!("kernel_tcp cleanup: {error}");
            }
        }
    }
}

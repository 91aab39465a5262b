//! What TLS costs on the S1–S2 link: the traffic of one encrypted training sample (30→8→1, fast
//! profile, 2048-bit key: about 10 round trips, 19.2 KiB up and 153.6 KiB down, from
//! `cargo xtask speed`) over loopback, plain TCP against mutually authenticated TLS 1.3.
//! The handshake is paid once per session and measured on its own.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use transport::pki::{self, PkiSpec};
use transport::{
    tls, Channel, ChannelError, Role, Server, ServerOptions, TcpChannel, TcpOptions, TlsAcceptor,
    TlsCredentials, TlsFiles,
};

const ROUND_TRIPS: usize = 10;
const UP: usize = 19_660 / ROUND_TRIPS;
const DOWN: usize = 157_286 / ROUND_TRIPS;

/// Answers every frame with a frame of `DOWN` bytes.
fn echo<C: Channel>(mut c: C) {
    let reply = vec![7u8; DOWN];
    loop {
        match c.recv_frame() {
            Ok(_) => {
                if c.send_frame(&reply).is_err() {
                    return;
                }
            }
            Err(ChannelError::Closed) | Err(_) => return,
        }
    }
}

fn sample<C: Channel>(c: &mut C, up: &[u8]) {
    for _ in 0..ROUND_TRIPS {
        c.send_frame(up).unwrap();
        assert_eq!(c.recv_frame().unwrap().len(), DOWN);
    }
}

fn links(cr: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    pki::create(dir.path(), &PkiSpec::loopback(&[])).unwrap();
    let s2 = TlsCredentials::load(&TlsFiles::in_pki(dir.path(), "s2"), Role::S2).unwrap();
    let s1 = TlsCredentials::load(&TlsFiles::in_pki(dir.path(), "s1"), Role::S1).unwrap();
    let client = s1.client_config(Role::S2).unwrap();

    let tcp_server = Server::bind("127.0.0.1:0", ServerOptions::default()).unwrap();
    let tcp_addr = tcp_server.local_addr();
    std::thread::spawn(move || tcp_server.run(|c, _| echo(c)));
    let tls_server = Server::bind("127.0.0.1:0", ServerOptions::default()).unwrap();
    let tls_addr = tls_server.local_addr();
    let acceptor = TlsAcceptor(s2.server_config(&[Role::S1]).unwrap());
    std::thread::spawn(move || tls_server.run_with(acceptor, |c, _| echo(c)));

    let up = vec![3u8; UP];
    let opts = TcpOptions::default();
    let mut g = cr.benchmark_group("one training sample's S1-S2 traffic");
    g.measurement_time(Duration::from_secs(5));
    let mut tcp = TcpChannel::connect(tcp_addr, opts.clone()).unwrap();
    g.bench_function("plain TCP", |b| b.iter(|| sample(&mut tcp, &up)));
    let mut tls_chan = tls::connect(tls_addr, None, client.clone(), &opts).unwrap();
    g.bench_function("TLS 1.3", |b| b.iter(|| sample(&mut tls_chan, &up)));
    g.finish();
    cr.bench_function("TLS handshake (connect, both certificates verified)", |b| {
        b.iter(|| tls::connect(tls_addr, None, client.clone(), &opts).unwrap())
    });
}

criterion_group!(benches, links);
criterion_main!(benches);

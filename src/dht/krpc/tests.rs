use super::*;
use crate::bencode::decode;

fn t(bytes: &[u8]) -> TransactionId {
    TransactionId::new(bytes).unwrap()
}

fn node(byte: u8, addr: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId([byte; 20]),
        addr: addr.parse().unwrap(),
    }
}

fn hash(byte: u8) -> InfoHash {
    InfoHash([byte; 20])
}

/// Encodes, checks the bytes are canonical bencode, parses back and compares.
fn round_trip(m: &Message) -> Vec<u8> {
    let bytes = m.to_bytes();
    let doc = decode(&bytes, Limits::default()).unwrap();
    assert!(
        doc.warnings.is_empty(),
        "keys sorted: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(bytes.len() <= MAX_DATAGRAM);
    assert_eq!(
        Message::parse(&bytes).as_ref(),
        Ok(m),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

fn kind(bytes: &[u8]) -> ParseErrorKind {
    Message::parse(bytes).unwrap_err().kind
}

#[test]
fn bep5_examples_parse_and_encode_to_the_same_bytes() {
    let examples: [&[u8]; 8] = [
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
    ];
    for bytes in examples {
        let m = Message::parse(bytes).unwrap();
        assert_eq!(m.to_bytes(), bytes, "{}", String::from_utf8_lossy(bytes));
    }
    let m = Message::parse(examples[5]).unwrap();
    let Body::Query(q) = &m.body else {
        panic!("a query")
    };
    assert_eq!(q.id, NodeId(*b"abcdefghij0123456789"));
    assert_eq!(
        q.method,
        Method::AnnouncePeer {
            info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
            port: 6881,
            implied_port: true,
            token: Token::new(b"aoeusnth").unwrap(),
        }
    );
    let m = Message::parse(examples[4]).unwrap();
    let Body::Response(r) = &m.body else {
        panic!("a response")
    };
    assert_eq!(
        r.values,
        [
            "97.120.106.101:11893".parse().unwrap(),
            "105.100.104.116:28269".parse().unwrap()
        ]
    );
    let m = Message::parse(examples[7]).unwrap();
    assert_eq!(
        m.body,
        Body::Error(RemoteError {
            code: code::GENERIC,
            message: "A Generic Error Ocurred".into()
        })
    );
}

#[test]
fn every_query_round_trips() {
    let id = NodeId([1; 20]);
    let want = Want { v4: true, v6: true };
    let methods = [
        Method::Ping,
        Method::FindNode {
            target: NodeId([2; 20]),
            want,
        },
        Method::FindNode {
            target: NodeId([2; 20]),
            want: Want {
                v4: false,
                v6: true,
            },
        },
        Method::GetPeers {
            info_hash: hash(3),
            want: Want::default(),
        },
        Method::AnnouncePeer {
            info_hash: hash(3),
            port: 51413,
            implied_port: false,
            token: Token::new(&[9; MAX_TOKEN]).unwrap(),
        },
        Method::AnnouncePeer {
            info_hash: hash(3),
            port: 0,
            implied_port: true,
            token: Token::new(b"").unwrap(),
        },
        Method::SampleInfohashes {
            target: NodeId([4; 20]),
            want: Want {
                v4: true,
                v6: false,
            },
        },
    ];
    for method in methods {
        let mut m = Message::query(t(b"xy"), id, method);
        round_trip(&m);
        // BEP 43's read-only flag and a client version.
        m.version = Version::new(b"BT\x00\x01");
        if let Body::Query(q) = &mut m.body {
            q.read_only = true;
        }
        let bytes = round_trip(&m);
        assert!(bytes.windows(7).any(|w| w == b"2:roi1e"));
    }
}

#[test]
fn every_response_round_trips() {
    let id = NodeId([7; 20]);
    let ip: SocketAddr = "203.0.113.9:6881".parse().unwrap();
    let mut r = Response::new(id);
    round_trip(&Message::response(t(b"\x00\x01"), ip, r.clone()));
    r.nodes = vec![node(1, "1.2.3.4:1"), node(2, "5.6.7.8:65535")];
    r.nodes6 = vec![node(3, "[2001:db8::1]:6881")];
    r.token = Some(Token::new(b"tok").unwrap());
    round_trip(&Message::response(t(b"a"), ip, r.clone()));
    r.values = vec![
        "10.0.0.1:6881".parse().unwrap(),
        "[2001:db8::2]:51413".parse().unwrap(),
    ];
    round_trip(&Message::response(
        t(b"a"),
        "[2001:db8::9]:1".parse().unwrap(),
        r.clone(),
    ));
    r.samples = Some(Samples {
        interval: MAX_INTERVAL,
        num: u32::MAX,
        hashes: vec![hash(1), hash(2)],
    });
    round_trip(&Message::response(t(b""), ip, r.clone()));
    r.samples = Some(Samples {
        interval: 0,
        num: 0,
        hashes: Vec::new(),
    });
    round_trip(&Message::response(t(&[0xff; MAX_TRANSACTION]), ip, r));
}

#[test]
fn errors_round_trip_and_long_messages_are_cut() {
    for code in [
        code::GENERIC,
        code::SERVER,
        code::PROTOCOL,
        code::METHOD_UNKNOWN,
        -1,
    ] {
        round_trip(&Message::error(t(b"e1"), code, "Invalid token"));
    }
    let long = "é".repeat(300);
    let bytes = Message::error(t(b"e1"), 201, &long).to_bytes();
    let Body::Error(e) = Message::parse(&bytes).unwrap().body else {
        panic!("an error")
    };
    assert_eq!(e.message, "é".repeat(MAX_ERROR_MESSAGE / 2));
    // Invalid UTF-8 from outside is replaced, and still round trips.
    let m = Message::parse(b"d1:eli202e3:a\xffbe1:t1:x1:y1:ee").unwrap();
    let Body::Error(e) = &m.body else {
        panic!("an error")
    };
    assert_eq!(e.message, "a\u{fffd}b");
    round_trip(&m);
    // A code alone is accepted (no message).
    let m = Message::parse(b"d1:eli203ee1:t1:x1:y1:ee").unwrap();
    assert_eq!(
        m.body,
        Body::Error(RemoteError {
            code: 203,
            message: String::new()
        })
    );
}

#[test]
fn the_largest_message_we_can_write_fits_a_datagram_and_parses() {
    let mut r = Response::new(NodeId([0xee; 20]));
    r.nodes = (0..MAX_NODES as u8 + 5)
        .map(|i| node(i, "198.51.100.1:65535"))
        .collect();
    r.nodes6 = (0..MAX_NODES as u8 + 5)
        .map(|i| node(i, "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535"))
        .collect();
    r.values = (0..MAX_VALUES + 50)
        .map(|_| "[2001:db8::ffff]:65535".parse().unwrap())
        .collect();
    r.token = Some(Token::new(&[0xaa; MAX_TOKEN]).unwrap());
    r.samples = Some(Samples {
        interval: u32::MAX,
        num: u32::MAX,
        hashes: (0..MAX_SAMPLES + 10).map(|i| hash(i as u8)).collect(),
    });
    let mut m = Message::response(
        t(&[0xff; MAX_TRANSACTION]),
        "[2001:db8::1]:65535".parse().unwrap(),
        r.clone(),
    );
    m.version = Version::new(&[0x7f; MAX_VERSION]);
    let bytes = m.to_bytes();
    assert!(bytes.len() <= MAX_DATAGRAM, "{} bytes", bytes.len());
    let Body::Response(back) = Message::parse(&bytes).unwrap().body else {
        panic!("a response")
    };
    assert_eq!(back.nodes, r.nodes[..MAX_NODES]);
    assert_eq!(back.nodes6, r.nodes6[..MAX_NODES]);
    assert_eq!(back.values.len(), MAX_VALUES);
    let samples = back.samples.unwrap();
    assert_eq!(samples.hashes.len(), MAX_SAMPLES);
    assert_eq!(samples.interval, MAX_INTERVAL, "clamped");
}

#[test]
fn nodes_of_the_wrong_family_are_not_written() {
    let mut r = Response::new(NodeId([1; 20]));
    r.nodes = vec![node(1, "[::1]:1"), node(2, "1.1.1.1:1")];
    r.nodes6 = vec![node(3, "1.1.1.1:2"), node(4, "[::2]:2")];
    let bytes = Message::response(t(b"a"), "1.1.1.1:1".parse().unwrap(), r).to_bytes();
    let Body::Response(back) = Message::parse(&bytes).unwrap().body else {
        panic!("a response")
    };
    assert_eq!(back.nodes, [node(2, "1.1.1.1:1")]);
    assert_eq!(back.nodes6, [node(4, "[::2]:2")]);
}

#[test]
fn informative_fields_are_dropped_when_malformed() {
    // `ip` of 5 bytes, a 17-byte `v`, `ro` as a string: the message stands without them.
    let bytes = b"d1:ad2:id20:abcdefghij0123456789e2:ip5:abcde1:q4:ping2:ro1:11:t2:aa1:v17:aaaaaaaaaaaaaaaaa1:y1:qe";
    let m = Message::parse(bytes).unwrap();
    assert_eq!((m.ip, m.version), (None, None));
    assert!(matches!(
        m.body,
        Body::Query(Query {
            read_only: false,
            ..
        })
    ));
    // Well formed ones are read.
    let m = Message::parse(
        b"d2:ip6:\x0a\x00\x00\x01\x1a\xe11:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:v4:LT\x02\x001:y1:re",
    )
    .unwrap();
    assert_eq!(m.ip, Some("10.0.0.1:6881".parse().unwrap()));
    assert_eq!(m.version.unwrap().as_bytes(), b"LT\x02\x00");
}

#[test]
fn unknown_keys_and_want_items_are_ignored_first_duplicate_wins() {
    // libtorrent's BEP 33 scrape keys, an unknown want item, keys out of order.
    let m = Message::parse(
        b"d1:t2:aa1:y1:q1:q9:get_peers1:ad9:info_hash20:mnopqrstuvwxyz1234562:id20:abcdefghij01234567894:wantl2:n72:n6e6:noseedi1e6:scrapei1ee1:y1:re",
    )
    .unwrap();
    let Body::Query(q) = m.body else {
        panic!("the first `y` counts")
    };
    assert_eq!(
        q.method,
        Method::GetPeers {
            info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
            want: Want {
                v4: false,
                v6: true
            }
        }
    );
}

#[test]
fn malformed_messages_are_refused_naming_the_problem() {
    let id = "2:id20:abcdefghij0123456789";
    let cases: Vec<(Vec<u8>, ParseErrorKind)> = vec![
        (b"li1ee".to_vec(), ParseErrorKind::NotDict),
        (b"d1:y1:qe".to_vec(), ParseErrorKind::Missing("t")),
        (b"d1:ti1e1:y1:qe".to_vec(), ParseErrorKind::WrongType { key: "t", expected: "a string" }),
        (
            b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:qe".to_vec(),
            ParseErrorKind::BadLength { key: "t", len: 17, expected: "at most 16 bytes" },
        ),
        (b"d1:t2:aae".to_vec(), ParseErrorKind::Missing("y")),
        (b"d1:t2:aa1:y1:xe".to_vec(), ParseErrorKind::UnknownType("x".into())),
        (b"d1:t2:aa1:y1:qe".to_vec(), ParseErrorKind::Missing("q")),
        (
            b"d1:q3:put1:t2:aa1:y1:qe".to_vec(),
            ParseErrorKind::UnknownMethod("put".into()),
        ),
        (b"d1:q4:ping1:t2:aa1:y1:qe".to_vec(), ParseErrorKind::Missing("a")),
        (
            b"d1:al2:ide1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            ParseErrorKind::WrongType { key: "a", expected: "a dictionary" },
        ),
        (b"d1:ade1:q4:ping1:t2:aa1:y1:qe".to_vec(), ParseErrorKind::Missing("id")),
        (
            b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            ParseErrorKind::BadLength { key: "id", len: 19, expected: "20 bytes" },
        ),
        (
            format!("d1:ad{id}e1:q9:find_node1:t2:aa1:y1:qe").into_bytes(),
            ParseErrorKind::Missing("target"),
        ),
        (
            format!("d1:ad{id}9:info_hash3:abce1:q9:get_peers1:t2:aa1:y1:qe").into_bytes(),
            ParseErrorKind::BadLength { key: "info_hash", len: 3, expected: "20 bytes" },
        ),
        (
            format!("d1:ad{id}6:target20:mnopqrstuvwxyz1234564:want2:n4e1:q9:find_node1:t2:aa1:y1:qe")
                .into_bytes(),
            ParseErrorKind::WrongType { key: "want", expected: "a list" },
        ),
        (
            format!("d1:ad{id}6:target20:mnopqrstuvwxyz1234564:wantl{}ee1:q9:find_node1:t2:aa1:y1:qe", "2:n4".repeat(9))
                .into_bytes(),
            ParseErrorKind::TooMany { key: "want", count: 9, max: MAX_WANT },
        ),
        (
            format!("d1:ad{id}9:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
                .into_bytes(),
            ParseErrorKind::Missing("port"),
        ),
        (
            format!("d1:ad{id}9:info_hash20:mnopqrstuvwxyz1234564:porti65536e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
                .into_bytes(),
            ParseErrorKind::OutOfRange { key: "port", value: 65536 },
        ),
        (
            format!("d1:ad{id}9:info_hash20:mnopqrstuvwxyz1234564:porti-1e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
                .into_bytes(),
            ParseErrorKind::OutOfRange { key: "port", value: -1 },
        ),
        (
            format!("d1:ad{id}9:info_hash20:mnopqrstuvwxyz1234564:porti1ee1:q13:announce_peer1:t2:aa1:y1:qe")
                .into_bytes(),
            ParseErrorKind::Missing("token"),
        ),
        (
            format!("d1:ad{id}9:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token65:{}e1:q13:announce_peer1:t2:aa1:y1:qe", "x".repeat(65))
                .into_bytes(),
            ParseErrorKind::BadLength { key: "token", len: 65, expected: "at most 64 bytes" },
        ),
        (
            format!("d1:ad{id}12:implied_port1:19:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
                .into_bytes(),
            ParseErrorKind::WrongType { key: "implied_port", expected: "an integer" },
        ),
        (b"d1:t2:aa1:y1:re".to_vec(), ParseErrorKind::Missing("r")),
        (b"d1:rde1:t2:aa1:y1:re".to_vec(), ParseErrorKind::Missing("id")),
        (
            format!("d1:rd{id}5:nodes25:{}e1:t2:aa1:y1:re", "x".repeat(25)).into_bytes(),
            ParseErrorKind::BadLength { key: "nodes", len: 25, expected: "a multiple of 26" },
        ),
        (
            format!("d1:rd{id}6:nodes626:{}e1:t2:aa1:y1:re", "x".repeat(26)).into_bytes(),
            ParseErrorKind::BadLength { key: "nodes6", len: 26, expected: "a multiple of 38" },
        ),
        (
            format!("d1:rd{id}5:nodes{}:{}e1:t2:aa1:y1:re", 26 * 33, "x".repeat(26 * 33)).into_bytes(),
            ParseErrorKind::TooMany { key: "nodes", count: 33, max: MAX_NODES },
        ),
        (
            format!("d1:rd{id}5:nodesi1ee1:t2:aa1:y1:re").into_bytes(),
            ParseErrorKind::WrongType { key: "nodes", expected: "a string" },
        ),
        (
            format!("d1:rd{id}6:values6:abcdefe1:t2:aa1:y1:re").into_bytes(),
            ParseErrorKind::WrongType { key: "values", expected: "a list" },
        ),
        (
            format!("d1:rd{id}6:valuesl6:abcdef5:abcdeee1:t2:aa1:y1:re").into_bytes(),
            ParseErrorKind::BadLength { key: "values", len: 5, expected: "6 or 18 bytes" },
        ),
        (
            format!("d1:rd{id}6:valuesl{}ee1:t2:aa1:y1:re", "6:abcdef".repeat(201)).into_bytes(),
            ParseErrorKind::TooMany { key: "values", count: 201, max: MAX_VALUES },
        ),
        (
            format!("d1:rd{id}8:intervali1e3:numi1e7:samples19:{}e1:t2:aa1:y1:re", "x".repeat(19))
                .into_bytes(),
            ParseErrorKind::BadLength { key: "samples", len: 19, expected: "a multiple of 20" },
        ),
        (
            format!("d1:rd{id}8:intervali1e3:numi1e7:samples{}:{}e1:t2:aa1:y1:re", 20 * 81, "x".repeat(20 * 81))
                .into_bytes(),
            ParseErrorKind::TooMany { key: "samples", count: 81, max: MAX_SAMPLES },
        ),
        (
            format!("d1:rd{id}3:numi1e7:samples0:e1:t2:aa1:y1:re").into_bytes(),
            ParseErrorKind::Missing("interval"),
        ),
        (
            format!("d1:rd{id}8:intervali21601e3:numi1e7:samples0:e1:t2:aa1:y1:re").into_bytes(),
            ParseErrorKind::OutOfRange { key: "interval", value: 21601 },
        ),
        (
            format!("d1:rd{id}8:intervali1e3:numi-1e7:samples0:e1:t2:aa1:y1:re").into_bytes(),
            ParseErrorKind::OutOfRange { key: "num", value: -1 },
        ),
        (b"d1:t2:aa1:y1:ee".to_vec(), ParseErrorKind::Missing("e")),
        (
            b"d1:e4:oops1:t2:aa1:y1:ee".to_vec(),
            ParseErrorKind::WrongType { key: "e", expected: "a list of an error code and a message" },
        ),
        (
            b"d1:el4:oopse1:t2:aa1:y1:ee".to_vec(),
            ParseErrorKind::WrongType { key: "e", expected: "a list of an error code and a message" },
        ),
        (
            b"d1:eli201ei2ee1:t2:aa1:y1:ee".to_vec(),
            ParseErrorKind::WrongType { key: "e", expected: "a list of an error code and a message" },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            kind(&bytes),
            expected,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // Not bencode: the decoder's error, with its offset.
    assert!(matches!(kind(b"d1:t2:aa"), ParseErrorKind::Bencode(_)));
    assert!(matches!(
        kind(b"d1:t2:aa1:y1:qei1e"),
        ParseErrorKind::Bencode(_)
    ));
    let deep = format!(
        "d1:t2:aa1:y1:r1:rd2:xx{}{}ee",
        "l".repeat(10),
        "e".repeat(10)
    );
    assert!(matches!(kind(deep.as_bytes()), ParseErrorKind::Bencode(_)));
}

#[test]
fn an_oversized_datagram_is_refused_before_decoding() {
    let mut big = b"d1:t2:aa1:y1:r1:rd2:id20:abcdefghij01234567892:xx".to_vec();
    big.extend_from_slice(format!("{}:", MAX_DATAGRAM).as_bytes());
    big.extend(std::iter::repeat(b'x').take(MAX_DATAGRAM));
    big.extend_from_slice(b"ee");
    assert_eq!(kind(&big), ParseErrorKind::TooLarge(big.len()));
}

#[test]
fn outside_text_in_errors_is_escaped_and_cut() {
    let bytes = format!("d1:q40:\x1b]0;{}1:t2:aa1:y1:qe", "x".repeat(36));
    let err = Message::parse(bytes.as_bytes()).unwrap_err();
    let ParseErrorKind::UnknownMethod(name) = &err.kind else {
        panic!("{err:?}")
    };
    assert!(!name.contains('\x1b') && name.starts_with("\\u{1b}]0;"));
    assert!(name.len() < 40);
    assert!(!err.to_string().contains('\x1b'));
}

#[test]
fn queries_that_fail_to_parse_get_an_error_reply_and_nothing_else_does() {
    let reply = |bytes: &[u8]| Message::parse(bytes).unwrap_err().reply();
    let m = reply(b"d1:ad2:id20:abcdefghij0123456789e1:q3:put1:t2:aa1:y1:qe").unwrap();
    assert_eq!(m.transaction, t(b"aa"));
    assert!(matches!(
        m.body,
        Body::Error(RemoteError {
            code: code::METHOD_UNKNOWN,
            ..
        })
    ));
    round_trip(&m);
    let m = reply(b"d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe").unwrap();
    let Body::Error(e) = &m.body else {
        panic!("an error")
    };
    assert_eq!(e.code, code::PROTOCOL);
    assert_eq!(e.message, "`id` is 3 bytes long, not 20 bytes");
    // Responses, errors, and datagrams without a transaction id get none.
    assert_eq!(reply(b"d1:rd2:id3:abce1:t2:aa1:y1:re"), None);
    assert_eq!(reply(b"d1:el4:oopse1:t2:aa1:y1:ee"), None);
    assert_eq!(reply(b"d1:q4:ping1:y1:qe"), None);
    assert_eq!(reply(b"d1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe"), None);
    assert_eq!(reply(b"garbage"), None);
}

#[test]
fn short_bytes_hold_at_most_their_size() {
    assert!(Token::new(&[0; MAX_TOKEN]).is_some());
    assert!(Token::new(&[0; MAX_TOKEN + 1]).is_none());
    assert_eq!(TransactionId::new(b"ab").unwrap().as_bytes(), b"ab");
    assert_eq!(
        format!("{:?}", TransactionId::new(b"\x01\xff").unwrap()),
        "0x01ff"
    );
    assert_ne!(t(b"a"), t(b"a\0"));
}

#[test]
fn the_fuzz_seeds_are_what_their_names_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/dht_krpc");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match Message::parse(&bytes) {
            Ok(m) => assert_eq!(m.to_bytes(), bytes, "{name} is canonical"),
            Err(e) => assert!(name.starts_with("unknown_method"), "{name}: {e}"),
        }
        seen += 1;
    }
    assert!(seen >= 10);
}

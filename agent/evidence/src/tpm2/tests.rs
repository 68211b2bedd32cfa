// SPDX-License-Identifier: Apache-2.0
//! Round trips for every structure and parameter area of the codec (marshal, unmarshal, the
//! same value back; every shorter prefix refused as truncated; a byte more refused as
//! trailing), byte-exact encodings checked against what swtpm sends and accepts, and the
//! command and response framing with its typed failures.

use std::fmt::Debug;

use super::*;

/// Marshals `value`, checks that it unmarshals to itself, that each proper prefix fails as
/// truncated (not with a panic, not with a value) and that an extra byte is refused; returns
/// the bytes.
fn round_trip<T: Marshal + PartialEq + Debug>(value: &T) -> Vec<u8> {
    let bytes = value.to_bytes().unwrap();
    assert_eq!(&T::parse(&bytes).unwrap(), value, "{}", hex::encode(&bytes));
    for len in 0..bytes.len() {
        match T::parse(&bytes[..len]) {
            Err(Malformed::Truncated { .. }) => {}
            other => panic!("{} cut to {len} bytes: {other:?}", T::NAME),
        }
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(
        matches!(T::parse(&long), Err(Malformed::Trailing { len: 1, .. })),
        "{}",
        T::NAME
    );
    bytes
}

fn user_data_index() -> TpmsNvPublic {
    TpmsNvPublic {
        nv_index: 0x0140_0002,
        name_alg: alg::SHA256,
        attributes: tpma_nv::OWNERWRITE | tpma_nv::OWNERREAD | tpma_nv::PPREAD,
        auth_policy: Vec::new(),
        data_size: 64,
    }
}

fn rsa_ak(modulus: Vec<u8>) -> TpmtPublic {
    let attributes = tpma_object::FIXED_TPM
        | tpma_object::FIXED_PARENT
        | tpma_object::RESTRICTED
        | tpma_object::SIGN_ENCRYPT;
    TpmtPublic::rsa_signing_key(attributes, TpmtSigScheme::RSASSA_SHA256, 2048, modulus)
}

#[test]
fn structures_round_trip() {
    round_trip(&ClockInfo {
        clock: 3_600_000,
        reset_count: 3,
        restart_count: 1,
        safe: true,
    });
    let selection = PcrSelection::sha256(&[0, 7, 8, 23]).unwrap();
    assert_eq!(selection.select, [0x81, 0x01, 0x80]);
    assert_eq!(selection.indices(), [0, 7, 8, 23]);
    assert_eq!(round_trip(&selection), [0x00, 0x0b, 3, 0x81, 0x01, 0x80]);
    round_trip(&TpmlPcrSelection::default());
    round_trip(&TpmlPcrSelection {
        pcr_selections: vec![
            selection.clone(),
            PcrSelection {
                hash: 0x000c,
                select: vec![0xff; 4],
            },
        ],
    });
    round_trip(&TpmlDigest {
        digests: vec![vec![0x11; 32], Vec::new(), vec![0x22; 48]],
    });
    round_trip(&TpmsTaggedProperty {
        property: pt::NV_BUFFER_MAX,
        value: 1024,
    });
    round_trip(&TpmsNvPublic {
        auth_policy: vec![0xAA; 32],
        ..user_data_index()
    });
    round_trip(&TpmtSymDefObject::NULL);
    round_trip(&TpmtSymDefObject {
        algorithm: 0x0006, // TPM_ALG_AES
        key_bits: 128,
        mode: 0x0043, // TPM_ALG_CFB
    });
    round_trip(&TpmtSigScheme::NULL);
    round_trip(&TpmtSigScheme {
        scheme: alg::RSASSA,
        hash_alg: alg::SHA256,
    });
    round_trip(&rsa_ak(vec![0xC5; 256]));
    if let PublicDetail::Rsa { parameters, .. } = rsa_ak(Vec::new()).detail {
        round_trip(&parameters);
        assert_eq!(parameters.exponent_bytes(), [1, 0, 1]);
        let three = TpmsRsaParms {
            exponent: 3,
            ..parameters
        };
        assert_eq!(three.exponent_bytes(), [3]);
    }
    round_trip(&TpmtSignature::Rsassa {
        hash: alg::SHA256,
        sig: vec![0x5A; 256],
    });
    round_trip(&TpmtSignature::Rsapss {
        hash: alg::SHA256,
        sig: vec![0x5B; 256],
    });
    round_trip(&TpmtSignature::Ecdsa {
        hash: alg::SHA256,
        signature_r: vec![1; 32],
        signature_s: vec![2; 32],
    });
    assert_eq!(TpmtSignature::parse(&[0x00, 0x10]), Ok(TpmtSignature::Null));
    round_trip(&TpmsAuthCommand::password(b"paravisor"));
    round_trip(&TpmsAuthResponse::password());
}

#[test]
fn undecoded_variants_keep_their_bytes() {
    // An ECC key (TPM_ALG_ECC) and an HMAC signature: the type-specific rest is kept as is.
    let ecc = TpmtPublic {
        name_alg: alg::SHA256,
        object_attributes: 0x0005_0072,
        auth_policy: vec![],
        detail: PublicDetail::Undecoded {
            object_type: 0x0023,
            rest: vec![
                0x00, 0x10, 0x00, 0x18, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x10, 0, 0, 0, 0,
            ],
        },
    };
    let bytes = ecc.to_bytes().unwrap();
    assert_eq!(TpmtPublic::parse(&bytes).unwrap(), ecc);
    assert_eq!(ecc.object_type(), 0x0023);
    let hmac = TpmtSignature::Undecoded {
        sig_alg: 0x0005,
        rest: vec![0x00, 0x0b, 9, 9],
    };
    assert_eq!(
        TpmtSignature::parse(&hmac.to_bytes().unwrap()).unwrap(),
        hmac
    );
    assert_eq!(hmac.sig_alg(), 0x0005);
}

#[test]
fn marshalling_refuses_what_a_reader_would_refuse() {
    assert_eq!(
        PcrSelection::sha256(&[24]),
        Err(MarshalError::PcrIndex { index: 24 })
    );
    let too_many = TpmlDigest {
        digests: vec![vec![0; 32]; 9],
    };
    assert!(matches!(
        too_many.to_bytes(),
        Err(MarshalError::TooMany {
            count: 9,
            max: 8,
            ..
        })
    ));
    let banks = TpmlPcrSelection {
        pcr_selections: vec![PcrSelection::sha256(&[]).unwrap(); 17],
    };
    assert!(matches!(
        banks.to_bytes(),
        Err(MarshalError::TooMany { count: 17, .. })
    ));
    let wide = PcrSelection {
        hash: alg::SHA256,
        select: vec![0; 256],
    };
    assert!(matches!(
        wide.to_bytes(),
        Err(MarshalError::TooLarge { max: 255, .. })
    ));
    // And the reader refuses counts above the same bounds before allocating for them.
    assert!(matches!(
        TpmlPcrSelection::parse(&u32::MAX.to_be_bytes()),
        Err(Malformed::Count {
            count: u32::MAX,
            max: MAX_PCR_SELECTIONS,
            ..
        })
    ));
}

#[test]
fn command_parameters_round_trip() {
    let get_capability = GetCapabilityCommand {
        capability: cap::TPM_PROPERTIES,
        property: pt::NV_BUFFER_MAX,
        property_count: 1,
    };
    assert_eq!(
        hex::encode(round_trip(&get_capability)),
        "000000060000012c00000001"
    );
    assert_eq!(
        round_trip(&NvReadCommand {
            size: 1024,
            offset: 0
        }),
        [0x04, 0x00, 0x00, 0x00]
    );
    round_trip(&NvWriteCommand {
        data: vec![0xA5; 32],
        offset: 16,
    });
    round_trip(&NvDefineSpaceCommand {
        auth: b"paravisor".to_vec(),
        public_info: user_data_index(),
    });
    round_trip(&PcrReadCommand {
        pcr_selection_in: TpmlPcrSelection::sha256(&[0, 1, 2]).unwrap(),
    });
    let quote = QuoteCommand {
        qualifying_data: b"nonce".to_vec(),
        in_scheme: TpmtSigScheme::NULL,
        pcr_select: TpmlPcrSelection::sha256(&(0..24).collect::<Vec<_>>()).unwrap(),
    };
    assert_eq!(
        hex::encode(round_trip(&quote)),
        concat!(
            "0005",
            "6e6f6e6365", // qualifyingData
            "0010",       // inScheme: TPM_ALG_NULL
            "00000001",
            "000b",
            "03",
            "ffffff", // PCRs 0-23 of SHA-256
        )
    );
    round_trip(&QuoteCommand {
        in_scheme: TpmtSigScheme {
            scheme: alg::RSASSA,
            hash_alg: alg::SHA256,
        },
        ..quote
    });
}

#[test]
fn response_parameters_round_trip() {
    round_trip(&GetCapabilityResponse {
        more_data: true,
        tpm_properties: vec![
            TpmsTaggedProperty {
                property: pt::NV_INDEX_MAX,
                value: 2048,
            },
            TpmsTaggedProperty {
                property: pt::NV_BUFFER_MAX,
                value: 1024,
            },
        ],
    });
    let public = user_data_index();
    let name = sha256_name(&public.to_bytes().unwrap());
    round_trip(&NvReadPublicResponse {
        nv_public: public,
        nv_name: name,
    });
    round_trip(&NvReadResponse {
        data: b"abcd".to_vec(),
    });
    round_trip(&PcrReadResponse {
        pcr_update_counter: 16,
        pcr_selection_out: TpmlPcrSelection::sha256(&[0, 1]).unwrap(),
        pcr_values: TpmlDigest {
            digests: vec![vec![0; 32], vec![0xff; 32]],
        },
    });
    round_trip(&QuoteResponse {
        quoted: vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x18],
        signature: TpmtSignature::Rsassa {
            hash: alg::SHA256,
            sig: vec![7; 256],
        },
    });
    let area = rsa_ak(vec![0xC5; 256]).to_bytes().unwrap();
    let name = sha256_name(&area);
    round_trip(&ReadPublicResponse {
        qualified_name: sha256_qualified_name(&rh::OWNER.to_be_bytes(), &name),
        out_public: area,
        name,
    });
}

#[test]
fn a_structure_inside_a_tpm2b_is_checked_apart_from_the_buffer() {
    // TPM2B_NV_PUBLIC whose TPMS_NV_PUBLIC stops short of dataSize.
    let mut w = TpmWriter::new();
    w.tpm2b("auth", b"").unwrap();
    let inner = user_data_index().to_bytes().unwrap();
    w.tpm2b("publicInfo", &inner[..inner.len() - 2]).unwrap();
    match NvDefineSpaceCommand::parse(w.as_bytes()) {
        Err(Malformed::Inner { what, reason }) => {
            assert_eq!(what, "publicInfo");
            assert!(
                matches!(
                    *reason,
                    Malformed::Truncated {
                        what: "dataSize",
                        ..
                    }
                ),
                "{reason:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The buffer itself cut short is a plain truncation.
    let bytes = w.into_bytes();
    assert!(matches!(
        NvDefineSpaceCommand::parse(&bytes[..bytes.len() - 1]),
        Err(Malformed::Truncated {
            what: "publicInfo",
            ..
        })
    ));
}

#[test]
fn get_capability_refuses_other_capabilities() {
    let mut w = TpmWriter::new();
    w.u8(0).u32(0x0000_0005).u32(0); // TPM_CAP_PCRS
    assert_eq!(
        GetCapabilityResponse::parse(w.as_bytes()),
        Err(Malformed::Unexpected {
            what: "capability",
            found: 5,
            expected: 6
        })
    );
}

#[test]
fn command_encoding_is_byte_exact() {
    // TPM2_NV_Read of 0x01400001, 1024 bytes at 0, owner auth with an empty password.
    let p = NvReadCommand {
        size: 1024,
        offset: 0,
    }
    .to_bytes()
    .unwrap();
    let cmd = encode_command(cc::NV_READ, &[rh::OWNER, 0x0140_0001], &[&[]], &p).unwrap();
    assert_eq!(
        hex::encode(&cmd),
        concat!(
            "8002", "00000023", "0000014e", // header: sessions, 35 bytes, NV_Read
            "40000001", "01400001", // authHandle TPM_RH_OWNER, nvIndex
            "00000009", "40000009", "0000", "00", "0000", // one TPM_RS_PW session
            "0400", "0000", // size, offset
        )
    );
    let cmd = encode_command(cc::NV_READ_PUBLIC, &[0x0140_0001], &[], &[]).unwrap();
    assert_eq!(hex::encode(&cmd), "80010000000e0000016901400001");
    assert_eq!(command_code(&cmd), Some(cc::NV_READ_PUBLIC));
    assert_eq!(declared_size(&cmd), Some(14));
    assert_eq!(declared_size(&cmd[..5]), None);
}

#[test]
fn commands_round_trip_and_fail_in_the_tpm_s_order() {
    let command = Command {
        code: cc::NV_WRITE,
        handles: vec![0x0150_0000, 0x0150_0000],
        sessions: vec![TpmsAuthCommand::password(b"pw")],
        params: vec![0, 2, 1, 2, 0, 0],
    };
    let bytes = command.encode().unwrap();
    assert_eq!(Command::decode(&bytes, handle_count), Ok(command.clone()));
    let bare = Command {
        code: cc::PCR_READ,
        handles: vec![],
        sessions: vec![],
        params: vec![0, 0, 0, 0],
    };
    let bare_bytes = bare.encode().unwrap();
    assert_eq!(&bare_bytes[..2], [0x80, 0x01]);
    assert_eq!(Command::decode(&bare_bytes, handle_count), Ok(bare));

    let decode = |b: &[u8]| Command::decode(b, handle_count);
    assert!(matches!(
        decode(&bytes[..9]),
        Err(CommandError::Header(Malformed::Truncated { .. }))
    ));
    assert_eq!(
        decode(&bytes[..bytes.len() - 1]),
        Err(CommandError::Size {
            declared: bytes.len() as u32,
            actual: bytes.len() - 1
        })
    );
    let mut bad_tag = bytes.clone();
    bad_tag[1] = 0xC1;
    assert_eq!(decode(&bad_tag), Err(CommandError::Tag { tag: 0x80C1 }));
    // Unknown to the caller: refused before the handles are looked at.
    assert_eq!(
        Command::decode(&bytes, |_| None),
        Err(CommandError::CommandCode { code: cc::NV_WRITE })
    );
    let short = encode_command(cc::NV_WRITE, &[1], &[], &[]).unwrap();
    assert!(matches!(
        decode(&short),
        Err(CommandError::Handles(Malformed::Truncated { .. }))
    ));
    // authorizationSize past the end, a session cut short, and an empty area.
    let mut w = TpmWriter::new();
    w.u16(st::SESSIONS)
        .u32(18)
        .u32(cc::QUOTE)
        .u32(0x8100_0003)
        .u32(9);
    assert!(matches!(
        decode(w.as_bytes()),
        Err(CommandError::AuthArea(Malformed::Truncated { .. }))
    ));
    let mut w = TpmWriter::new();
    w.u16(st::SESSIONS)
        .u32(23)
        .u32(cc::QUOTE)
        .u32(0x8100_0003)
        .u32(5)
        .u32(rh::PW)
        .u8(0);
    assert!(matches!(
        decode(w.as_bytes()),
        Err(CommandError::AuthArea(Malformed::Truncated { .. }))
    ));
    let mut w = TpmWriter::new();
    w.u16(st::SESSIONS)
        .u32(18)
        .u32(cc::QUOTE)
        .u32(0x8100_0003)
        .u32(0);
    assert_eq!(decode(w.as_bytes()), Err(CommandError::NoSessions));
}

#[test]
fn responses_round_trip() {
    let body = ResponseBody {
        handles: vec![0x8000_0000],
        params: vec![1, 2, 3],
    };
    let with = encode_response(&body, &[TpmsAuthResponse::password()]).unwrap();
    assert_eq!(
        hex::encode(&with),
        concat!(
            "8002", "0000001a", "00000000", // header: sessions, 26 bytes, success
            "80000000", "00000003", "010203", // handle, parameterSize, parameters
            "0000", "01", "0000", // password session: continueSession
        )
    );
    assert_eq!(decode_response(&with, 1, true), Ok(body.clone()));
    let without = encode_response(&body, &[]).unwrap();
    assert_eq!(decode_response(&without, 1, false), Ok(body));
    let failed = encode_error_response(rc::NV_UNINITIALIZED);
    assert_eq!(hex::encode(&failed), "80010000000a0000014a");
    // A TPM error is reported even with a session tag on the request.
    assert_eq!(
        decode_response(&failed, 0, true),
        Err(ResponseError::Tpm(ResponseCode(rc::NV_UNINITIALIZED)))
    );
}

#[test]
fn malformed_responses_are_typed() {
    let response = |tag: u16, body: &[u8]| {
        let mut w = TpmWriter::new();
        w.u16(tag)
            .u32((HEADER_LEN + body.len()) as u32)
            .u32(0)
            .bytes(body);
        w.into_bytes()
    };
    type Check = fn(&Malformed) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (vec![0x80, 0x01, 0, 0], |m| {
            matches!(m, Malformed::ShortHeader { len: 4 })
        }),
        (
            {
                let mut r = response(st::NO_SESSIONS, &[1, 2]);
                r.pop();
                r
            },
            |m| {
                matches!(
                    m,
                    Malformed::SizeMismatch {
                        declared: 12,
                        actual: 11
                    }
                )
            },
        ),
        (response(st::SESSIONS, &[0, 0, 0, 9, 1]), |m| {
            matches!(m, Malformed::Truncated { .. })
        }),
        // Parameters but no session after them.
        (response(st::SESSIONS, &[0, 0, 0, 1, 1]), |m| {
            matches!(m, Malformed::Truncated { .. })
        }),
        (response(st::NO_SESSIONS, &[]), |m| {
            matches!(m, Malformed::Unexpected { what: "tag", .. })
        }),
    ];
    for (bytes, check) in cases {
        match decode_response(&bytes, 0, true) {
            Err(ResponseError::Malformed(reason)) => assert!(check(&reason), "{reason:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn names_and_handles() {
    let public = user_data_index().to_bytes().unwrap();
    let name = sha256_name(&public);
    assert_eq!(name.len(), 34);
    assert_eq!(name[..2], [0x00, 0x0b]);
    let qualified = sha256_qualified_name(&rh::OWNER.to_be_bytes(), &name);
    assert_eq!(qualified.len(), 34);
    assert_ne!(qualified, name);
    assert!(is_nv_index(0x0140_0001));
    assert!(!is_nv_index(0x8100_0003));
    assert_eq!(handle_count(cc::NV_READ), Some(2));
    assert_eq!(handle_count(0x0000_0144), None);
    assert_eq!(command_name(cc::QUOTE), "TPM2_Quote");
}

#[test]
fn guest_attestation_commands_round_trip() {
    round_trip(&StartAuthSessionCommand {
        nonce_caller: vec![0; 32],
        encrypted_salt: Vec::new(),
        session_type: SE_POLICY,
        symmetric: TpmtSymDefObject::NULL,
        auth_hash: alg::SHA256,
    });
    round_trip(&StartAuthSessionResponse {
        nonce_tpm: vec![9; 32],
    });
    let pcrs = TpmlPcrSelection::sha256(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let policy = PolicyPcrCommand {
        pcr_digest: vec![0x11; 32],
        pcrs: pcrs.clone(),
    };
    assert_eq!(
        hex::encode(round_trip(&policy)),
        format!("0020{}00000001000b03ff0000", "11".repeat(32))
    );
    let digest = policy_pcr_digest(&pcrs, &[0x11; 32]).unwrap();
    let mut expected = vec![0u8; 32];
    expected.extend_from_slice(&cc::POLICY_PCR.to_be_bytes());
    expected.extend_from_slice(&pcrs.to_bytes().unwrap());
    expected.extend_from_slice(&[0x11; 32]);
    assert_eq!(digest[..], Sha256::digest(&expected)[..]);
    assert_eq!(
        sha256_pcr_digest(&[[1; 32], [2; 32]])[..],
        Sha256::digest([[1u8; 32], [2; 32]].concat())[..]
    );
    let template = ephemeral_key_template(&digest);
    round_trip(&template);
    round_trip(&CreatePrimaryCommand {
        user_auth: Vec::new(),
        sensitive_data: Vec::new(),
        in_public: template.clone(),
        outside_info: Vec::new(),
        creation_pcr: TpmlPcrSelection::default(),
    });
    round_trip(&CreatePrimaryResponse {
        out_public: template.to_bytes().unwrap(),
        creation_data: vec![1, 2, 3],
        creation_hash: vec![4; 32],
        creation_ticket: TkCreation {
            tag: ST_CREATION,
            hierarchy: rh::NULL,
            digest: Vec::new(),
        },
        name: sha256_name(&template.to_bytes().unwrap()),
    });
    round_trip(&CertifyCommand {
        qualifying_data: Vec::new(),
        in_scheme: TpmtSigScheme::NULL,
    });
    round_trip(&CertifyResponse {
        certify_info: vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x17],
        signature: TpmtSignature::Rsassa {
            hash: alg::SHA256,
            sig: vec![3; 256],
        },
    });
    round_trip(&CertifyAttest {
        qualified_signer: vec![0, 0x0b, 1],
        extra_data: Vec::new(),
        clock_info: ClockInfo {
            clock: 5,
            reset_count: 1,
            restart_count: 0,
            safe: true,
        },
        firmware_version: 7,
        name: vec![0, 0x0b, 2],
        qualified_name: vec![0, 0x0b, 3],
    });
    for scheme in [
        RsaDecryptScheme::Null,
        RsaDecryptScheme::Rsaes,
        RsaDecryptScheme::Oaep {
            hash_alg: alg::SHA256,
        },
    ] {
        round_trip(&RsaDecryptCommand {
            cipher_text: vec![5; 256],
            in_scheme: scheme,
            label: Vec::new(),
        });
    }
    assert!(matches!(
        RsaDecryptScheme::parse(&[0x00, 0x14]),
        Err(Malformed::Unexpected { .. })
    ));
    round_trip(&RsaDecryptResponse {
        message: vec![6; 32],
    });
    round_trip(&FlushContextCommand {
        flush_handle: 0x8000_0000,
    });
    assert_eq!(handle_count(cc::FLUSH_CONTEXT), Some(0));
    assert_eq!(handle_count(cc::CERTIFY), Some(2));
    assert_eq!(handle_count(cc::START_AUTH_SESSION), Some(2));
    assert_eq!(command_name(cc::RSA_DECRYPT), "TPM2_RSA_Decrypt");
}

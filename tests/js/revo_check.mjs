// pkijs as an independent OCSP and CRL client for revo's integration tests
// (tests/integration/test_pkijs.py). Parses and verifies with pkijs only, prints JSON.
//
//   node revo_check.mjs ocsp RESPONSE.der ISSUER.pem [SIGNER.pem]
//   node revo_check.mjs crl CRL.der ISSUER.pem
//
// ocsp: OCSPResponse -> BasicOCSPResponse, signature verified by
//   basicResponse.verify({trustedCerts: [issuer]}): pkijs picks the signer among the
//   response's certs by responderID, checks the signature, chains a delegated signer to
//   the issuer and checks it may answer for every CertID (id-kp-OCSPSigning, issued by
//   the CertID's issuer). A response without certs (CA-signed, or a delegated responder
//   that left its certificate out) is verified with SIGNER, or else ISSUER, as its only
//   candidate certificate.
// Prints {responseStatus, producedAt, responderIdType, responses: [{serial, status,
//   thisUpdate, nextUpdate, revocationTime, revocationReason}], nonce, signatureValid,
//   verifyError, responderCertIncluded, certsCount, issuerCertIncluded, signerCertIncluded,
//   signedByIssuer, signedBySigner}.
//
// crl: CertificateRevocationList, crl.verify({issuerCertificate}); prints
//   {signatureValid, verifyError, thisUpdate, nextUpdate, crlNumber,
//    entries: [{serial, revocationDate, reason}]}.
//
// Times are RFC 3339 UTC strings, serials upper-case hex of even length (as revo prints
// them), reasons RFC 5280 names (null when the reasonCode extension is absent).
// Any failure to read or parse: exit 1 with one line on stderr.

import { readFileSync } from "node:fs";
import { webcrypto } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

// Node 18 has no global crypto without a flag: give pkijs Node's WebCrypto explicitly.
pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: webcrypto }));

const OID_BASIC = "1.3.6.1.5.5.7.48.1.1";
const OID_NONCE = "1.3.6.1.5.5.7.48.1.2";
const OID_CRL_NUMBER = "2.5.29.20";
const OID_REASON = "2.5.29.21";
const RESPONSE_STATUS = ["successful", "malformedRequest", "internalError", "tryLater", "4",
  "sigRequired", "unauthorized"];
const REASONS = ["unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
  "superseded", "cessationOfOperation", "certificateHold", "7", "removeFromCRL",
  "privilegeWithdrawn", "aACompromise"];

function die(msg) {
  process.stderr.write(`revo_check: ${String(msg).replace(/\s+/g, " ").trim()}\n`);
  process.exit(1);
}

function bytes(path) {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    die(`cannot read ${path}: ${e.message}`);
  }
}

function der(path) {
  const b = bytes(path);
  const text = Buffer.from(b).toString("latin1");
  const m = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/.exec(text);
  return m ? new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64")) : b;
}

function parse(buf, what) {
  const asn1 = asn1js.fromBER(buf);
  if (asn1.offset === -1) die(`${what}: not BER/DER: ${asn1.result.error}`);
  if (asn1.offset !== buf.byteLength) die(`${what}: ${buf.byteLength - asn1.offset} trailing octets`);
  return asn1.result;
}

function certificate(path) {
  try {
    return new pkijs.Certificate({ schema: parse(der(path), path) });
  } catch (e) {
    die(`${path}: not a certificate: ${e.message}`);
  }
}

function hex(view) {
  return Buffer.from(view).toString("hex").toUpperCase();
}

function serialHex(integer) {
  let h = hex(integer.valueBlock.valueHexView);
  while (h.length > 2 && h.startsWith("00")) h = h.slice(2);
  return h;
}

function iso(date) {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, "Z") : null;
}

function reasonName(n) {
  return REASONS[n] ?? String(n);
}

function sameDer(a, b) {
  return Buffer.from(a.toSchema(true).toBER(false)).equals(Buffer.from(b.toSchema(true).toBER(false)));
}

async function ocsp(respPath, issuerPath, signerPath) {
  const issuer = certificate(issuerPath);
  const signer = signerPath ? certificate(signerPath) : null;
  let resp;
  try {
    resp = new pkijs.OCSPResponse({ schema: parse(bytes(respPath), respPath) });
  } catch (e) {
    die(`${respPath}: not an OCSPResponse: ${e.message}`);
  }
  const out = { responseStatus: RESPONSE_STATUS[resp.responseStatus.valueBlock.valueDec] ?? String(resp.responseStatus.valueBlock.valueDec) };
  if (!resp.responseBytes) {
    out.signatureValid = false;
    return out;
  }
  if (resp.responseBytes.responseType !== OID_BASIC) die(`responseType ${resp.responseBytes.responseType} is not id-pkix-ocsp-basic`);
  let basic;
  try {
    basic = new pkijs.BasicOCSPResponse({ schema: parse(resp.responseBytes.response.valueBlock.valueHexView, "BasicOCSPResponse") });
  } catch (e) {
    die(`not a BasicOCSPResponse: ${e.message}`);
  }
  const tbs = basic.tbsResponseData;
  out.producedAt = iso(tbs.producedAt);
  out.responderIdType = tbs.responderID instanceof asn1js.OctetString ? "byKey" : "byName";
  out.responses = tbs.responses.map((r) => {
    const one = { serial: serialHex(r.certID.serialNumber), status: null, thisUpdate: iso(r.thisUpdate),
      nextUpdate: iso(r.nextUpdate), revocationTime: null, revocationReason: null };
    const st = r.certStatus;
    if (st.idBlock.tagClass === 3 && st.idBlock.tagNumber === 0 && !st.idBlock.isConstructed) {
      one.status = "good";
    } else if (st.idBlock.tagClass === 3 && st.idBlock.tagNumber === 1 && st.idBlock.isConstructed) {
      one.status = "revoked";
      const [time, reason] = st.valueBlock.value;
      one.revocationTime = iso(time.toDate());
      if (reason) one.revocationReason = reasonName(reason.valueBlock.value[0].valueBlock.valueDec);
    } else if (st.idBlock.tagClass === 3 && st.idBlock.tagNumber === 2 && !st.idBlock.isConstructed) {
      one.status = "unknown";
    } else {
      die(`certStatus with tag [${st.idBlock.tagNumber}]`);
    }
    return one;
  });
  out.nonce = null;
  for (const ext of tbs.responseExtensions || []) {
    if (ext.extnID !== OID_NONCE) continue;
    // RFC 9654: extnValue holds the DER OCTET STRING of the nonce
    const inner = parse(ext.extnValue.valueBlock.valueHexView, "nonce");
    if (!(inner instanceof asn1js.OctetString)) die("nonce extension is not an OCTET STRING");
    out.nonce = hex(inner.valueBlock.valueHexView);
  }
  out.responderCertIncluded = Boolean(basic.certs && basic.certs.length);
  out.certsCount = basic.certs ? basic.certs.length : 0;
  out.issuerCertIncluded = basic.certs ? basic.certs.some((c) => sameDer(c, issuer)) : false;
  out.signerCertIncluded = signer && basic.certs ? basic.certs.some((c) => sameDer(c, signer)) : null;
  if (!out.responderCertIncluded) basic.certs = [signer || issuer];
  // which of the given certificates' keys the signature verifies with (informative)
  out.signedByIssuer = await basic.verifyResponseSignature(issuer).catch(() => false);
  out.signedBySigner = signer ? await basic.verifyResponseSignature(signer).catch(() => false) : null;
  out.verifyError = null;
  try {
    out.signatureValid = (await basic.verify({ trustedCerts: [issuer] })) === true;
  } catch (e) {
    out.signatureValid = false;
    out.verifyError = e.message;
  }
  return out;
}

async function crl(crlPath, issuerPath) {
  const issuer = certificate(issuerPath);
  let list;
  try {
    list = new pkijs.CertificateRevocationList({ schema: parse(der(crlPath), crlPath) });
  } catch (e) {
    die(`${crlPath}: not a CRL: ${e.message}`);
  }
  const out = { signatureValid: false, verifyError: null };
  try {
    out.signatureValid = (await list.verify({ issuerCertificate: issuer })) === true;
  } catch (e) {
    out.verifyError = e.message;
  }
  out.thisUpdate = iso(list.thisUpdate.value);
  out.nextUpdate = list.nextUpdate ? iso(list.nextUpdate.value) : null;
  out.crlNumber = null;
  for (const ext of list.crlExtensions?.extensions || []) {
    if (ext.extnID === OID_CRL_NUMBER) {
      const n = parse(ext.extnValue.valueBlock.valueHexView, "cRLNumber");
      const big = BigInt("0x" + hex(n.valueBlock.valueHexView));
      out.crlNumber = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
    }
  }
  out.entries = (list.revokedCertificates || []).map((r) => {
    let reason = null;
    for (const ext of r.crlEntryExtensions?.extensions || []) {
      if (ext.extnID === OID_REASON) {
        reason = reasonName(parse(ext.extnValue.valueBlock.valueHexView, "reasonCode").valueBlock.valueDec);
      }
    }
    return { serial: serialHex(r.userCertificate), revocationDate: iso(r.revocationDate.value), reason };
  });
  return out;
}

const [mode, ...args] = process.argv.slice(2);
try {
  let result;
  if (mode === "ocsp" && (args.length === 2 || args.length === 3)) result = await ocsp(...args);
  else if (mode === "crl" && args.length === 2) result = await crl(...args);
  else die("usage: revo_check.mjs ocsp RESPONSE.der ISSUER.pem [SIGNER.pem] | crl CRL.der ISSUER.pem");
  process.stdout.write(JSON.stringify(result) + "\n");
} catch (e) {
  die(e && e.message ? e.message : e);
}

// custodes: check a log entry's proof of inclusion and its checkpoint's signatures in this
// browser, with WebCrypto (SHA-256, Ed25519), so that the page does not ask to be trusted.
//
// - RFC 9162 §2.1.1: leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || left || right)
// - RFC 9162 §2.1.3.2: verifying an inclusion proof
// - c2sp.org/signed-note: "— name base64(key-id || signature)" lines under the note text;
//   vkey "name+hex8(key-id)+base64(type || key)", key-id = SHA-256(name LF type key)[:4]
// - c2sp.org/tlog-checkpoint: origin LF size LF base64(root) LF *(extension LF)
// - c2sp.org/tlog-proof: "c2sp.org/tlog-proof@v1" LF ["extra " b64 LF] "index " N LF
//   *(b64(hash) LF) LF checkpoint-note
// - c2sp.org/tlog-cosignature: type 0x04; signature = u64 time || Ed25519 over
//   "cosignature/v1" LF "time " T LF checkpoint-text
//
// Every form marked data-verify is checked once when the page loads and again on submit.
"use strict";

const custodesLog = (() => {
  const encoder = new TextEncoder();
  const ED25519 = 0x01;
  const COSIGNATURE = 0x04;
  const RECEIPT_HEADER = "c2sp.org/tlog-proof@v1";

  class CheckError extends Error {}

  function fail(message) {
    throw new CheckError(message);
  }

  function decodeBase64(text, what) {
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
      fail(`${what} is not base64`);
    }
    const raw = atob(text);
    const out = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    if (encodeBase64(out) !== text) fail(`${what} is not canonical base64`);
    return out;
  }

  function encodeBase64(bytes) {
    return btoa(String.fromCharCode(...bytes));
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  function parseDecimal(text, what) {
    if (!/^(0|[1-9][0-9]{0,19})$/.test(text)) fail(`${what} is not a canonical decimal`);
    const value = BigInt(text);
    if (value >= 2n ** 64n) fail(`${what} is too large`);
    return value;
  }

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to (or an error).
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) fail(`entry ${index} is not in a tree of ${size} entries`);
    let fn = index;
    let sn = size - 1n;
    let r = leaf;
    for (const p of proof) {
      if (p.length !== 32) fail("a proof hash is not 32 bytes");
      if (sn === 0n) fail("the proof has more hashes than the tree needs");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) fail("the proof has fewer hashes than the tree needs");
    return r;
  }

  async function checkInclusion(index, size, leaf, proof, root) {
    const got = await rootFromInclusion(index, size, leaf, proof);
    if (!equal(got, root)) fail("the proof leads to another root than the checkpoint's");
  }

  function hasSpace(text) {
    return /\s/u.test(text);
  }

  async function parseVkey(vkey) {
    const m = /^([^+]*)\+([^+]*)\+(.*)$/su.exec(vkey.trim());
    if (!m) fail("the verifier key is not name+hash+key");
    const [, name, idHex, keyB64] = m;
    if (!name || hasSpace(name)) fail("the verifier key's name is empty or has spaces");
    if (!/^[0-9a-f]{8}$/.test(idHex)) fail("the verifier key's hash is not 8 hex digits");
    const key = decodeBase64(keyB64, "the verifier key");
    if (key.length !== 33 || (key[0] !== ED25519 && key[0] !== COSIGNATURE)) {
      fail("the verifier key is not an Ed25519 note or cosignature key");
    }
    const id = (await sha256(concat(encoder.encode(name + "\n"), key))).slice(0, 4);
    if (hex(id) !== idHex) fail("the verifier key's hash does not match its name and key");
    const publicKey = await crypto.subtle.importKey(
      "raw",
      key.slice(1),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return { name, id, type: key[0], publicKey, text: vkey.trim() };
  }

  function splitNote(note) {
    if (!note.endsWith("\n")) fail("the signed note does not end in a newline");
    const split = note.lastIndexOf("\n\n");
    if (split < 0) fail("the signed note has no signature block");
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2, -1).split("\n");
    const sigs = lines.map((line) => {
      const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
      if (!m) fail("a signature line of the note is malformed");
      const raw = decodeBase64(m[2], "a note signature");
      if (raw.length < 5) fail("a note signature is too short");
      return { name: m[1], id: raw.slice(0, 4), sig: raw.slice(4), line };
    });
    return { text, sigs };
  }

  function parseCheckpoint(text) {
    const lines = text.split("\n");
    if (lines.length < 4 || lines.at(-1) !== "") fail("the checkpoint has too few lines");
    const root = decodeBase64(lines[2], "the checkpoint root");
    if (root.length !== 32) fail("the checkpoint root is not 32 bytes");
    return { origin: lines[0], size: parseDecimal(lines[1], "the checkpoint size"), root };
  }

  async function verifySignature(key, sig, message) {
    return crypto.subtle.verify({ name: "Ed25519" }, key.publicKey, sig, message);
  }

  // Open a signed note: the log key must have signed it; each witness key that signed is
  // checked too (a bad signature by any known key fails the note).
  async function openNote(note, logKey, witnessKeys) {
    const { text, sigs } = splitNote(note);
    let logSigned = false;
    const cosigned = [];
    for (const s of sigs) {
      const known = [logKey, ...witnessKeys].find(
        (k) => k.name === s.name && equal(k.id, s.id),
      );
      if (!known) continue;
      if (known.type === ED25519) {
        if (!(await verifySignature(known, s.sig, encoder.encode(text)))) {
          fail(`the signature by ${known.name} does not verify`);
        }
        logSigned = logSigned || known === logKey;
      } else {
        if (s.sig.length !== 72) fail(`the cosignature by ${known.name} is malformed`);
        const time = new DataView(s.sig.buffer, s.sig.byteOffset, 8).getBigUint64(0);
        const message = encoder.encode(`cosignature/v1\ntime ${time}\n${text}`);
        if (!(await verifySignature(known, s.sig.slice(8), message))) {
          fail(`the cosignature by ${known.name} does not verify`);
        }
        cosigned.push(known.name);
      }
    }
    if (!logSigned) fail(`the note carries no signature by the log key ${logKey.name}`);
    return { text, cosigned };
  }

  function parseReceipt(receipt) {
    const split = receipt.indexOf("\n\n");
    if (split < 0) fail("the receipt has no blank line before its checkpoint");
    const head = receipt.slice(0, split).split("\n");
    const note = receipt.slice(split + 2);
    if (head[0] !== RECEIPT_HEADER) fail(`the receipt does not start with ${RECEIPT_HEADER}`);
    let at = 1;
    if (head[at] && head[at].startsWith("extra ")) at += 1;
    const m = /^index (.*)$/.exec(head[at] || "");
    if (!m) fail("the receipt has no index line");
    const index = parseDecimal(m[1], "the receipt index");
    const proof = head.slice(at + 1).map((h) => {
      const bytes = decodeBase64(h, "a proof hash");
      if (bytes.length !== 32) fail("a proof hash is not 32 bytes");
      return bytes;
    });
    return { index, proof, note };
  }

  function entryBytes(field) {
    const value = field.value;
    if (field.dataset.encoding === "base64") return decodeBase64(value.trim(), "the entry");
    return encoder.encode(value);
  }

  // Run every check the form's fields allow; report each step.
  async function check(form, report) {
    if (!globalThis.crypto || !crypto.subtle) {
      fail("this browser offers no WebCrypto on this page (it needs https or localhost)");
    }
    const field = (name) => form.elements.namedItem(name);
    const logKey = await parseVkey(field("vkey").value);
    report(`log key ${logKey.name} (key ID ${hex(logKey.id)}) read`);
    const witnessField = field("witnesses");
    const witnessKeys = [];
    for (const line of (witnessField ? witnessField.value : "").split("\n")) {
      if (line.trim()) witnessKeys.push(await parseVkey(line));
    }
    const receiptField = field("receipt");
    const receipt = receiptField ? parseReceipt(receiptField.value) : null;
    const note = receipt ? receipt.note : field("note").value;
    const opened = await openNote(note, logKey, witnessKeys);
    report(`checkpoint signature by ${logKey.name} verifies (Ed25519)`);
    if (witnessKeys.length) {
      report(`cosigned by ${opened.cosigned.length} of ${witnessKeys.length} witness(es)`);
    }
    const cp = parseCheckpoint(opened.text);
    if (cp.origin !== logKey.name) fail(`the checkpoint is for log ${cp.origin}, not this log`);
    report(`checkpoint: ${cp.size} entries, root ${hex(cp.root)}`);
    if (!receipt) return { size: cp.size };
    const expected = form.dataset.index;
    if (expected !== undefined && BigInt(expected) !== receipt.index) {
      fail(`the receipt is for entry ${receipt.index}, not entry ${expected}`);
    }
    const leaf = await leafHash(entryBytes(field("entry")));
    report(`entry ${receipt.index} hashes to leaf ${hex(leaf)}`);
    await checkInclusion(receipt.index, cp.size, leaf, receipt.proof, cp.root);
    report(`${receipt.proof.length} proof hash(es) lead from the leaf to the checkpoint's root`);
    return { size: cp.size, index: receipt.index };
  }

  function show(form, state, headline, steps, problem) {
    const verdict = document.getElementById(form.dataset.verdict);
    const list = document.getElementById(form.dataset.steps);
    verdict.dataset.state = state;
    verdict.className = `verdict ${state}`;
    verdict.textContent = headline;
    list.replaceChildren(
      ...steps.map((s) => Object.assign(document.createElement("li"), { textContent: s })),
    );
    if (problem) {
      const li = Object.assign(document.createElement("li"), { textContent: problem });
      li.className = "failed";
      list.append(li);
    }
  }

  async function run(form) {
    const steps = [];
    show(form, "checking", "Checking…", steps);
    try {
      const result = await check(form, (s) => steps.push(s));
      const what = result.index === undefined
        ? `Verified: this checkpoint of ${result.size} entries is signed by the log's key.`
        : `Verified: entry ${result.index} is in the log's signed tree of ${result.size} entries.`;
      show(form, "verified", what, steps);
    } catch (err) {
      const why = err instanceof CheckError || err instanceof DOMException
        ? err.message
        : String(err);
      show(form, "failed", `Failed: ${why}`, steps, why);
    }
  }

  function start() {
    for (const form of document.querySelectorAll("form[data-verify]")) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        run(form);
      });
      for (const hidden of form.querySelectorAll("[data-needs-script]")) hidden.hidden = false;
      run(form);
    }
  }

  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  return { leafHash, nodeHash, rootFromInclusion, checkInclusion, parseVkey, openNote,
           parseCheckpoint, parseReceipt, decodeBase64, hex, CheckError };
})();

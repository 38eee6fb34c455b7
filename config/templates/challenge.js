// rempart's browser check: find a decimal answer such that
// SHA-256(nonce + answer) starts with `d` zero bits, then go to the
// verification path, which sets the pass cookie and returns to the page.
// SHA-256 is written out here: crypto.subtle exists only in secure
// contexts (not on plain HTTP), and one synchronous hash per try is
// faster than an awaited call per try.
(function () {
  "use strict";
  var n = "{{ challenge.nonce }}", d = {{ challenge.difficulty }}, r = "{{ challenge.return_to }}";
  if (!navigator.cookieEnabled) {
    var c = document.getElementById("rempart-cookies");
    if (c) { c.hidden = false; }
    return;
  }
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];
  var W = new Array(64);
  // SHA-256 of an ASCII string, as eight 32-bit words.
  function sha256(s) {
    var l = s.length, blocks = (l + 9 + 63) >> 6, m = new Array(blocks * 16), i, t;
    for (i = 0; i < m.length; i++) { m[i] = 0; }
    for (i = 0; i < l; i++) { m[i >> 2] |= (s.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8); }
    m[l >> 2] |= 0x80 << (24 - (l & 3) * 8);
    m[blocks * 16 - 1] = l * 8;
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    for (var b = 0; b < blocks; b++) {
      for (t = 0; t < 16; t++) { W[t] = m[b * 16 + t]; }
      for (t = 16; t < 64; t++) {
        var x = W[t - 15], y = W[t - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
      }
      var A = H[0], B = H[1], C = H[2], D = H[3], E = H[4], F = H[5], G = H[6], J = H[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((E >>> 6) | (E << 26)) ^ ((E >>> 11) | (E << 21)) ^ ((E >>> 25) | (E << 7));
        var t1 = (J + S1 + ((E & F) ^ (~E & G)) + K[t] + W[t]) | 0;
        var S0 = ((A >>> 2) | (A << 30)) ^ ((A >>> 13) | (A << 19)) ^ ((A >>> 22) | (A << 10));
        var t2 = (S0 + ((A & B) ^ (A & C) ^ (B & C))) | 0;
        J = G; G = F; F = E; E = (D + t1) | 0; D = C; C = B; B = A; A = (t1 + t2) | 0;
      }
      H[0] = (H[0] + A) | 0; H[1] = (H[1] + B) | 0; H[2] = (H[2] + C) | 0; H[3] = (H[3] + D) | 0;
      H[4] = (H[4] + E) | 0; H[5] = (H[5] + F) | 0; H[6] = (H[6] + G) | 0; H[7] = (H[7] + J) | 0;
    }
    return H;
  }
  function zeroBits(H) {
    for (var i = 0, z = 0; i < 8; i++) {
      var v = H[i] >>> 0;
      if (v !== 0) { return z + Math.clz32(v); }
      z += 32;
    }
    return z;
  }
  var a = 0;
  while (zeroBits(sha256(n + a)) < d) { a++; }
  window.location.replace("{{ challenge.verify_path }}?n=" + n + "&a=" + a + "&r=" + r);
})();

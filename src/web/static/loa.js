// Enhancements only: every page works without this file.
// 1. Live progress: a campaign that is sending reloads its progress table every 3 seconds.
// 2. Buttons with data-confirm ask before submitting (cancel, erase).
// 3. An SMS body shows its parts and encoding as it is typed: an estimate (GSM-7 unless a character
//    needs Unicode, as Vietnamese letters with diacritics do); the campaign's preview counts exactly.
(function () {
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€";
  document.querySelectorAll('textarea[data-sms]').forEach(function (t) {
    var info = document.getElementById('sms_info');
    function count() {
      var text = t.value, gsm = true, units = 0;
      for (var i = 0; i < text.length; i++) {
        var ch = text.charAt(i);
        if (EXT.indexOf(ch) >= 0) { units += 2; } else if (GSM.indexOf(ch) >= 0) { units += 1; } else { gsm = false; }
      }
      var n = gsm ? units : text.length;
      var one = gsm ? 160 : 70, many = gsm ? 153 : 67;
      var parts = n === 0 ? 0 : (n <= one ? 1 : Math.ceil(n / many));
      info.textContent = n + ' ký tự · ' + parts + ' tin · ' + (gsm ? 'không dấu (GSM-7)' : 'có dấu (Unicode, tốn gấp đôi)');
    }
    t.addEventListener('input', count);
    count();
  });
})();
(function () {
  var box = document.getElementById('progress');
  if (box && box.dataset.live === 'yes') {
    setInterval(function () {
      fetch(box.dataset.src, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { box.innerHTML = html; } })
        .catch(function () {});
    }, 3000);
  }
  document.querySelectorAll('button[data-confirm]').forEach(function (b) {
    b.addEventListener('click', function (e) { if (!window.confirm(b.dataset.confirm)) { e.preventDefault(); } });
  });
})();

// Enhancements only: every page works without this file.
// 1. Live progress: a campaign that is sending reloads its progress table every 3 seconds.
// 2. Buttons with data-confirm ask before submitting (cancel, erase).
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

// drguard console: expiry countdowns, and an incident's timeline kept live
// from the event stream (GET /api/v1/events), or by polling when the
// stream is not available. Served as a file: the CSP allows no inline
// script.
'use strict';

(function () {
  function fmt(ms) {
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
      m = Math.floor(s % 3600 / 60), parts = [];
    if (d) parts.push(d + 'd');
    if (h) parts.push(h + 'h');
    if (m && !d) parts.push(m + 'm');
    if (!d && !h) parts.push(s % 60 + 's');
    return parts.join(' ');
  }

  function countdowns() {
    document.querySelectorAll('[data-expires]').forEach(function (el) {
      var left = Date.parse(el.getAttribute('data-expires')) - Date.now();
      el.textContent = left > 0 ? 'in ' + fmt(left) + ' (' + el.getAttribute('datetime') + ')' : 'expired';
    });
  }
  countdowns();
  setInterval(countdowns, 1000);

  var live = document.getElementById('live');
  if (!live) return;
  var id = live.getAttribute('data-incident');
  var since = live.getAttribute('data-since');
  var status = document.getElementById('live-status');
  var fragment = '/incidents/' + encodeURIComponent(id) + '/live';
  var busy = false, again = false, polling = null;

  function say(text) { if (status) status.textContent = text; }

  // refresh swaps in the timeline and runs as the server renders them now;
  // a refresh asked for while one runs is done once it ends.
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(fragment, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (html) { live.innerHTML = html; })
      .catch(function (e) { say('Could not refresh: ' + e.message); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  function poll() {
    if (polling) return;
    say('Updating every 5 seconds.');
    polling = setInterval(refresh, 5000);
  }

  if (!window.EventSource) { poll(); return; }
  var es = new EventSource('/api/v1/events?incident=' + encodeURIComponent(id) + '&since=' + encodeURIComponent(since));
  es.onopen = function () { say('Live: changes appear as drguard journals them.'); };
  es.onmessage = refresh;
  es.onerror = function () {
    if (es.readyState === EventSource.CLOSED) { es.close(); poll(); } else { say('Reconnecting to the event stream…'); }
  };
})();

// absurd dashboard: the "Live" switch. Regions marked hx-trigger="every 2s" poll their page through
// htmx; this script stops those requests while the switch is off or the tab is hidden, and keeps
// the switch's position across pages. No other script runs on the pages (see the CSP).
(function () {
  'use strict';
  var KEY = 'absurd-dashboard-live';
  var toggle = document.getElementById('live-toggle');
  if (toggle) {
    toggle.checked = window.localStorage.getItem(KEY) !== 'off';
    toggle.addEventListener('change', function () {
      window.localStorage.setItem(KEY, toggle.checked ? 'on' : 'off');
    });
  }
  document.addEventListener('htmx:beforeRequest', function (event) {
    var source = event.detail && event.detail.elt;
    var polling = source && source.classList && source.classList.contains('live-region');
    if (polling && ((toggle && !toggle.checked) || document.hidden)) event.preventDefault();
  });
})();

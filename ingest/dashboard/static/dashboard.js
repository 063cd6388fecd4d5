(function () {
  var charts = document.querySelectorAll('.chart[data-spec]');
  if (typeof vegaEmbed !== 'function') {
    charts.forEach(function (el) {
      el.className += ' failed';
      el.setAttribute('data-rendered', 'error');
      el.textContent = 'Charts need assets/vega-bundle.js next to this page.';
    });
    return;
  }
  charts.forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute('data-spec')).textContent);
    vegaEmbed(el, spec, {renderer: 'svg', actions: false}).then(function () {
      el.setAttribute('data-rendered', 'true');
    }).catch(function (err) {
      el.className += ' failed';
      el.setAttribute('data-rendered', 'error');
      el.textContent = 'This chart could not be drawn: ' + err;
      console.error(err);
    });
  });
})();

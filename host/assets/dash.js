// Live pages: one event stream per page (the URL in the body's data-events); events ask
// the page's live region to refresh itself, and so does every change the page makes.
(function () {
  "use strict";
  // A form with hx-ext="json-spec" sends its fields as JSON, merged into the object in
  // its data-spec (the fields it does not show).
  htmx.defineExtension("json-spec", {
    onEvent: function (name, event) {
      if (name === "htmx:configRequest" && event.detail.verb !== "get") {
        event.detail.headers["Content-Type"] = "application/json";
      }
    },
    encodeParameters: function (xhr, parameters, element) {
      xhr.overrideMimeType("text/json");
      var spec = JSON.parse(element.dataset.spec || "{}");
      parameters.forEach(function (value, key) {
        spec[key] = value;
      });
      return JSON.stringify(spec);
    }
  });
  var types = [
    "job.created", "job.enqueued", "job.started", "job.progress", "job.log",
    "job.retrying", "job.scheduled", "job.succeeded", "job.failed", "job.cancelled",
    "job.deleted", "batch.progress", "batch.completed", "batch.cancelled",
    "workflow.step", "workflow.succeeded", "workflow.failed", "workflow.cancelled",
    "recurring.fired", "queue.paused", "queue.resumed", "agent.status",
    "alert.fired", "alert.resolved", "missed"
  ];
  // At most one refresh every half second, and always one after the last event, so the
  // page ends up showing the latest state however fast events come.
  var pending = false;
  var changed = function () {
    if (pending) {
      return;
    }
    pending = true;
    setTimeout(function () {
      pending = false;
      htmx.trigger(document.body, "orchestra-event");
    }, 500);
  };
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var verb = event.detail.requestConfig && event.detail.requestConfig.verb;
    if (event.detail.successful && verb && verb !== "get") {
      changed();
    }
  });
  var url = document.body.dataset.events;
  if (!url || !window.EventSource) {
    return;
  }
  var source = new EventSource(url);
  types.forEach(function (type) {
    source.addEventListener(type, changed);
  });
  source.onopen = function () {
    document.body.dataset.live = "open";
    changed();
  };
  source.onerror = function () {
    document.body.dataset.live = "reconnecting";
  };
})();

// Live pages: one event stream per page (the URL in the body's data-events); events ask
// the page's live region to refresh itself, and so does every change the page makes.
(function () {
  "use strict";
  // A form with hx-ext="json-spec" sends its fields as JSON, merged into the object in
  // its data-spec (the fields it does not show). Number inputs are sent as numbers; with
  // data-omit-empty, empty fields are left out (so the API applies its defaults).
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
        if (value === "" && element.dataset.omitEmpty) {
          return;
        }
        var input = element.elements && element.elements.namedItem(key);
        spec[key] = input && input.type === "number" && value !== "" ? Number(value) : value;
      });
      return JSON.stringify(spec);
    }
  });
  // What a change answered, in the element whose id is `target`: the API's error, or for
  // a new job a link to it.
  var tell = function (target, parts, failed) {
    var place = document.getElementById(target);
    if (!place) {
      return;
    }
    place.hidden = false;
    place.classList.toggle("error", failed);
    place.replaceChildren.apply(place, parts);
  };
  var answer = function (xhr) {
    try {
      return JSON.parse(xhr.responseText);
    } catch (e) {
      return {};
    }
  };
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail;
    var verb = detail.requestConfig && detail.requestConfig.verb;
    if (!verb || verb === "get" || !detail.xhr) {
      return;
    }
    var body = answer(detail.xhr);
    var target = detail.elt.dataset.result || "notice";
    if (detail.failed) {
      var where = body.field ? " (" + body.field + ")" : "";
      tell(target, [(body.error || "the request failed: " + detail.xhr.status) + where], true);
    } else if (target === "notice") {
      document.getElementById("notice").hidden = true;
    } else if (body.id) {
      var link = document.createElement("a");
      link.href = "/jobs/" + body.id;
      link.textContent = body.id;
      var said = body.existing ? "A job with this key exists already: " : "Submitted job ";
      var parts = [said, link];
      if (body.warning) {
        parts.push(" (" + body.warning + ")");
      }
      tell(target, parts, false);
    }
  });
  var types = [
    "job.created", "job.enqueued", "job.started", "job.progress", "job.log",
    "job.retrying", "job.scheduled", "job.succeeded", "job.failed", "job.cancelled",
    "job.deleted", "batch.progress", "batch.completed", "batch.cancelled",
    "workflow.step", "workflow.succeeded", "workflow.failed", "workflow.cancelled",
    "recurring.fired", "queue.paused", "queue.resumed", "agent.status",
    "plugin.loaded", "plugin.failed", "plugin.removed", "alert.fired", "alert.resolved",
    "missed"
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

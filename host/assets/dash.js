// Live pages: one event stream per page (the URL in the body's data-events); events ask
// the page's live region to refresh itself.
(function () {
  "use strict";
  var url = document.body.dataset.events;
  if (!url || !window.EventSource) {
    return;
  }
  var types = [
    "job.created", "job.enqueued", "job.started", "job.progress", "job.log",
    "job.retrying", "job.scheduled", "job.succeeded", "job.failed", "job.cancelled",
    "job.deleted", "batch.progress", "batch.completed", "batch.cancelled",
    "workflow.step", "workflow.succeeded", "workflow.failed", "workflow.cancelled",
    "recurring.fired", "queue.paused", "queue.resumed", "agent.status",
    "alert.fired", "alert.resolved", "missed"
  ];
  var source = new EventSource(url);
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

/*
 * Agent desk: the queue of handoffs, a ticket's summary and live conversation, take over /
 * reply / hand back / close. Talks to the desk namespace (`/desk`) of Rasa's socket.io server
 * (web/desk.py); every request is answered through a socket.io acknowledgement.
 *
 * Rules this file keeps (as chat.js):
 * - Text from shoppers, the bot and agents goes into the page with textContent only.
 * - The login is the shop's (agent id + token); the page keeps only the desk session the
 *   shop issued, in sessionStorage (gone with the tab), so a reload stays logged in and
 *   reopens the ticket it showed. The page never sees a conversation id.
 */
(function () {
  "use strict";

  var cfg = Object.assign({ rasaUrl: window.location.origin, socketPath: "/socket.io" },
    window.SHOP_CHAT_CONFIG || {});
  var SESSION_KEY = "shop-desk:session";
  var TICKET_KEY = "shop-desk:ticket";
  var QUEUE_EVERY_MS = 1000;

  function $(id) { return document.getElementById(id); }
  var els = {
    who: $("desk-who"), logout: $("desk-logout"), status: $("desk-status"),
    loginView: $("desk-login-view"), loginForm: $("desk-login"), loginAgent: $("login-agent"),
    loginToken: $("login-token"), deskView: $("desk-view"), queue: $("queue"),
    queueEmpty: $("queue-empty"), ticket: $("ticket"), ticketTitle: $("ticket-title"),
    ticketState: $("ticket-state"), summary: $("ticket-summary"), takeOver: $("take-over"),
    handBack: $("hand-back"), outcome: $("close-outcome"), close: $("close-ticket"),
    transcript: $("transcript"), replyForm: $("reply-form"), reply: $("reply"), send: $("send")
  };

  function load(key) {
    try { return JSON.parse(window.sessionStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function save(key, value) {
    try {
      if (value === null) { window.sessionStorage.removeItem(key); }
      else { window.sessionStorage.setItem(key, JSON.stringify(value)); }
    } catch (e) { /* storage off: a reload asks to log in again */ }
  }

  var state = { agent: null, ticket: null, queueTimer: null, busy: false };
  var socket = null;

  // ------------------------------------------------------------------ helpers
  function showStatus(text, kind) {
    els.status.textContent = text;
    els.status.className = "desk__status desk__status--" + (kind || "error");
    els.status.hidden = !text;
  }

  /** Emit a desk request; calls back with its answer, or a failure if none comes. */
  function request(event, data, done) {
    var answered = false;
    var timer = setTimeout(function () {
      if (!answered) {
        answered = true;
        done({ ok: false, error: "timeout", message: "The desk is not answering. Try again." });
      }
    }, 10000);
    socket.emit(event, data || {}, function (answer) {
      if (answered) { return; }
      answered = true;
      clearTimeout(timer);
      var result = answer || { ok: false, message: "No answer." };
      if (!result.ok && (result.error === "session_ended" || result.error === "not_logged_in") &&
          event !== "agent_login") {
        loggedOut(result.message);
      }
      done(result);
    });
  }

  function minutes(seconds) {
    if (typeof seconds !== "number") { return ""; }
    if (seconds < 60) { return seconds + " s"; }
    return Math.floor(seconds / 60) + " min";
  }

  function customerOf(ticket) {
    if (ticket.customer_name) { return ticket.customer_name; }
    return ticket.user_id ? ticket.user_id : "Shopper not identified";
  }

  function holds(ticket) {
    return Boolean(ticket && state.agent && ticket.status === "claimed" &&
      ticket.claimed_by === state.agent.agent_id);
  }

  // ------------------------------------------------------------------ login
  function loggedIn(answer) {
    state.agent = answer.agent;
    save(SESSION_KEY, { agent_id: answer.agent.agent_id, session: answer.session });
    els.who.textContent = "Signed in as " + answer.agent.display_name;
    els.who.hidden = false;
    els.logout.hidden = false;
    els.loginView.hidden = true;
    els.deskView.hidden = false;
    els.loginToken.value = "";
    showStatus("");
    pollQueue();
    var open = load(TICKET_KEY);
    if (typeof open === "string") { openTicket(open); }
  }

  function loggedOut(message) {
    state.agent = null;
    state.ticket = null;
    save(SESSION_KEY, null);
    save(TICKET_KEY, null);
    clearTimeout(state.queueTimer);
    els.who.hidden = true;
    els.logout.hidden = true;
    els.deskView.hidden = true;
    els.ticket.hidden = true;
    els.loginView.hidden = false;
    if (message) { showStatus(message, "error"); }
    els.loginToken.focus();
  }

  els.loginForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = { agent_id: els.loginAgent.value.trim(), token: els.loginToken.value };
    request("agent_login", data, function (answer) {
      if (answer.ok) { loggedIn(answer); } else { showStatus(answer.message, "error"); }
    });
  });

  els.logout.addEventListener("click", function () {
    request("agent_logout", {}, function () { loggedOut(""); });
  });

  // ------------------------------------------------------------------ queue
  function renderQueue(handoffs) {
    els.queue.textContent = "";
    els.queueEmpty.hidden = handoffs.length > 0;
    handoffs.forEach(function (t) {
      var li = document.createElement("li");
      li.className = "queue__item" + (state.ticket && state.ticket.id === t.id ? " queue__item--open" : "");
      var head = document.createElement("p");
      head.className = "queue__head";
      head.textContent = customerOf(t) + " · " + (t.reason || "handoff");
      var meta = document.createElement("p");
      meta.className = "queue__meta";
      meta.textContent = t.status === "claimed" ?
        "Taken by " + (t.claimed_by_name || t.claimed_by) :
        "Waiting " + minutes(t.waiting_seconds);
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = "Open";
      btn.setAttribute("aria-label", "Open ticket " + t.id + " of " + customerOf(t));
      btn.addEventListener("click", function () { openTicket(t.id); });
      li.appendChild(head);
      li.appendChild(meta);
      li.appendChild(btn);
      els.queue.appendChild(li);
      if (state.ticket && state.ticket.id === t.id) { updateTicket(t); }
    });
  }

  function pollQueue() {
    clearTimeout(state.queueTimer);
    if (!state.agent || !socket.connected) { return; }
    request("queue", {}, function (answer) {
      if (answer.ok) { renderQueue(answer.handoffs || []); }
      if (state.agent) { state.queueTimer = setTimeout(pollQueue, QUEUE_EVERY_MS); }
    });
  }

  // ------------------------------------------------------------------ ticket
  function updateTicket(ticket) {
    state.ticket = ticket;
    var mine = holds(ticket);
    els.ticketTitle.textContent = "Ticket " + ticket.id + " · " + customerOf(ticket);
    els.ticketState.textContent = ticket.status === "closed" ? "Closed (" + ticket.outcome + ")" :
      mine ? "You are in this chat; the assistant is paused." :
      ticket.status === "claimed" ? "Taken by " + (ticket.claimed_by_name || ticket.claimed_by) :
      "Waiting " + minutes(ticket.waiting_seconds) + "; the assistant is answering.";
    els.summary.textContent = ticket.summary || "";
    els.takeOver.disabled = ticket.status !== "open" || !ticket.has_conversation;
    els.handBack.disabled = !mine;
    els.close.disabled = ticket.status === "closed" ||
      (ticket.status === "claimed" && !mine);
    els.reply.disabled = !mine;
    els.send.disabled = !mine;
  }

  function addEntry(entry) {
    var li = document.createElement("li");
    li.className = "line line--" + entry.who;
    var who = document.createElement("span");
    who.className = "line__who";
    who.textContent = entry.who === "shopper" ? "Shopper" :
      entry.who === "agent" ? (entry.name || "Agent") + " (agent)" : "Assistant";
    var text = document.createElement("span");
    text.className = "line__text";
    text.textContent = entry.text; // never HTML
    li.appendChild(who);
    li.appendChild(text);
    els.transcript.appendChild(li);
    els.transcript.scrollTop = els.transcript.scrollHeight;
  }

  function showTicket(answer) {
    els.ticket.hidden = false;
    updateTicket(answer.ticket);
    els.transcript.textContent = "";
    (answer.transcript || []).forEach(addEntry);
    save(TICKET_KEY, answer.ticket.id);
  }

  function openTicket(id) {
    request("open_ticket", { handoff_id: id }, function (answer) {
      if (answer.ok) { showTicket(answer); showStatus(""); }
      else { showStatus(answer.message, "error"); }
    });
  }

  els.takeOver.addEventListener("click", function () {
    if (!state.ticket) { return; }
    request("take_over", { handoff_id: state.ticket.id }, function (answer) {
      if (answer.ok) { showTicket(answer); showStatus(""); els.reply.focus(); }
      else { showStatus(answer.message, "error"); }
      pollQueue();
    });
  });

  function sendReply() {
    var text = els.reply.value.trim();
    if (!text || !state.ticket || state.busy) { return; }
    state.busy = true;
    request("agent_message", { handoff_id: state.ticket.id, text: text }, function (answer) {
      state.busy = false;
      if (answer.ok) { els.reply.value = ""; showStatus(""); }
      else { showStatus(answer.message, "error"); }
      els.reply.focus();
    });
  }

  els.replyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    sendReply();
  });
  els.reply.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter is a new line; never while an IME is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      sendReply();
    }
  });

  els.handBack.addEventListener("click", function () {
    if (!state.ticket) { return; }
    request("hand_back", { handoff_id: state.ticket.id }, function (answer) {
      if (answer.ok) { updateTicket(answer.ticket); showStatus("Handed back to the assistant.", "ok"); }
      else { showStatus(answer.message, "error"); }
      pollQueue();
    });
  });

  els.close.addEventListener("click", function () {
    if (!state.ticket) { return; }
    var data = { handoff_id: state.ticket.id, outcome: els.outcome.value };
    request("close_ticket", data, function (answer) {
      if (answer.ok) { updateTicket(answer.ticket); showStatus("Ticket closed.", "ok"); }
      else { showStatus(answer.message, "error"); }
      pollQueue();
    });
  });

  // ------------------------------------------------------------------ connection
  function connect() {
    if (typeof window.io !== "function") {
      showStatus("The desk could not load. Please reload the page.", "error");
      return;
    }
    socket = window.io(cfg.rasaUrl + "/desk", {
      path: cfg.socketPath, transports: ["websocket", "polling"], reconnection: true,
      reconnectionDelay: 1000, reconnectionDelayMax: 5000, timeout: 8000
    });
    socket.on("connect", function () {
      var kept = load(SESSION_KEY);
      if (kept && kept.agent_id && kept.session) {
        request("agent_resume", kept, function (answer) {
          if (answer.ok) { loggedIn(answer); } else { loggedOut(answer.message); }
        });
      } else if (!state.agent) {
        els.loginView.hidden = false;
      }
    });
    socket.on("transcript_entry", function (entry) {
      if (state.ticket && entry && typeof entry.text === "string") { addEntry(entry); }
    });
    socket.on("disconnect", function () {
      showStatus("Connection to the desk lost; reconnecting…", "error");
    });
  }

  window.ShopDesk = Object.freeze({
    isReady: function () { return Boolean(socket && socket.connected); },
    agent: function () { return state.agent; }
  });
  connect();
})();

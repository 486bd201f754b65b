/*
 * Shopper chat widget for Rasa 3.6's socket.io channel.
 *
 * Rules this file keeps:
 * - Text from the shopper and from the bot is only ever put in the page with textContent
 *   (never innerHTML), so typed or stored markup shows as text.
 * - Links in bot messages become <a> elements only for http(s) URLs, with
 *   target=_blank and rel="noopener noreferrer".
 * - The session id is issued (and signed) by the server: on every (re)connect the widget
 *   sends `session_request` with the id it holds (none the first time), and the server
 *   answers `session_confirm` with that id if it signed it, else with a new one. The id
 *   lives in localStorage, so a reload or a reconnect continues the same conversation; the
 *   visible transcript is kept there too, and cleared when the server starts a new
 *   conversation instead. "New conversation" throws the id away and asks for a new one.
 * - A signed-in shopper's token (`customerToken` in window.SHOP_CHAT_CONFIG, or
 *   ShopChat.setCustomerToken) goes with every message as `customData.customer_token`; it is
 *   never stored.
 * - A human agent who takes the chat over (the desk, web/desk.py) writes in the same log: such
 *   a message carries `agent` (the agent's name, shown above it) and `desk_id`; when the page
 *   comes back (reload, reconnect) the server sends `agent_backlog`, the agent's messages of the
 *   conversation, and those not shown yet (by desk_id) are added.
 * - socket.io reconnects by itself; while it cannot, a clear message is shown and typed
 *   messages wait in a queue until the session is confirmed again.
 */
(function () {
  "use strict";

  var defaults = {
    rasaUrl: window.location.origin,
    socketPath: "/socket.io",
    title: "Store assistant",
    storageKey: "shop-chat",
    userEvent: "user_uttered",
    botEvent: "bot_uttered",
    typingTimeoutMs: 20000,
    maxStoredMessages: 200
  };
  var cfg = Object.assign({}, defaults, window.SHOP_CHAT_CONFIG || {});
  var SESSION_KEY = cfg.storageKey + ":session";
  var LOG_KEY = cfg.storageKey + ":log";

  var UNREACHABLE_TEXT = "Can't reach the assistant right now. We'll reconnect automatically; " +
    "anything you type will be sent once we're back.";
  var RECONNECTED_TEXT = "Connected again.";
  var NEW_SESSION_TEXT = "Your earlier conversation has ended; this is a new one.";

  var els = {
    title: document.getElementById("chat-title"),
    log: document.getElementById("chat-log"),
    status: document.getElementById("chat-status"),
    typing: document.getElementById("chat-typing"),
    typingText: document.querySelector("#chat-typing .chat__typing-text"),
    form: document.getElementById("chat-form"),
    input: document.getElementById("chat-input"),
    restart: document.getElementById("chat-restart")
  };

  // ------------------------------------------------------------------ storage
  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback; // storage disabled or corrupt: start fresh
    }
  }

  function save(key, value) {
    try {
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, JSON.stringify(value));
      }
    } catch (e) {
      /* private mode or quota: the chat still works, it just won't survive a reload */
    }
  }

  var state = {
    sessionId: typeof load(SESSION_KEY, null) === "string" ? load(SESSION_KEY, null) : null,
    requestedId: null,     // the id sent in the last session_request
    customerToken: typeof cfg.customerToken === "string" && cfg.customerToken ?
      cfg.customerToken : null,
    transcript: Array.isArray(load(LOG_KEY, [])) ? load(LOG_KEY, []) : [],
    withAgent: false,      // a human agent holds the chat (the assistant is paused)
    ready: false,          // connected AND session confirmed
    everConnected: false,
    offlineShown: false,
    pending: [],           // messages typed while offline (text to send)
    typingTimer: null,
    statusTimer: null
  };

  function persistTranscript() {
    var t = state.transcript;
    if (t.length > cfg.maxStoredMessages) {
      t.splice(0, t.length - cfg.maxStoredMessages);
    }
    save(LOG_KEY, t);
  }

  // ------------------------------------------------------------------ rendering
  var LINK_RE = /\[([^\]\n]{1,200})\]\((https?:\/\/[^\s()]+)\)|(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])/g;

  function safeUrl(raw) {
    try {
      var url = new URL(raw, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function makeLink(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  /** Bot text: plain text nodes, with http(s) URLs and [label](url) turned into links. */
  function appendBotText(container, text) {
    var last = 0;
    var m;
    LINK_RE.lastIndex = 0;
    while ((m = LINK_RE.exec(text)) !== null) {
      var href = safeUrl(m[2] || m[3]);
      if (!href) {
        continue;
      }
      container.appendChild(document.createTextNode(text.slice(last, m.index)));
      container.appendChild(makeLink(href, m[1] || m[3]));
      last = m.index + m[0].length;
    }
    container.appendChild(document.createTextNode(text.slice(last)));
  }

  function scrollToEnd() {
    els.log.scrollTop = els.log.scrollHeight;
  }

  function messageItem(who, agentName) {
    var li = document.createElement("li");
    li.className = "msg msg--" + who + (agentName ? " msg--agent" : "");
    var label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = who === "user" ? "You said: " : agentName ? "" : "Assistant: ";
    li.appendChild(label);
    if (agentName) {
      var name = document.createElement("span");
      name.className = "msg__author";
      name.textContent = agentName + " (agent)";
      li.appendChild(name);
    }
    var bubble = document.createElement("div");
    bubble.className = "msg__bubble";
    li.appendChild(bubble);
    return { li: li, bubble: bubble };
  }

  function renderUser(entry) {
    var item = messageItem("user");
    item.bubble.textContent = entry.text; // never HTML
    els.log.appendChild(item.li);
    scrollToEnd();
  }

  function renderQuickReplies(li, entry) {
    var group = document.createElement("div");
    group.className = "msg__replies";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Suggested replies");
    entry.quickReplies.forEach(function (reply, index) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "msg__reply";
      btn.textContent = reply.title;
      btn.disabled = entry.used !== undefined && entry.used !== null;
      if (entry.used === index) {
        btn.classList.add("msg__reply--chosen");
        btn.setAttribute("aria-pressed", "true");
      }
      btn.addEventListener("click", function () {
        if (entry.used !== undefined && entry.used !== null) {
          return;
        }
        entry.used = index;
        Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) {
          b.disabled = true;
        });
        btn.classList.add("msg__reply--chosen");
        btn.setAttribute("aria-pressed", "true");
        persistTranscript();
        sendMessage(reply.payload, reply.title);
        els.input.focus();
      });
      group.appendChild(btn);
    });
    li.appendChild(group);
  }

  function renderBot(entry) {
    // an agent's own words carry their name; "joined" / "handed back" notices say it already
    var author = typeof entry.agent === "string" && (entry.deskEvent || "message") === "message" ?
      entry.agent : null;
    var item = messageItem("bot", author);
    if (entry.deskId && !author) {
      item.li.classList.add("msg--notice");
    }
    if (entry.text) {
      appendBotText(item.bubble, entry.text);
    }
    if (entry.image) {
      var img = document.createElement("img");
      img.src = entry.image;
      img.alt = "Image sent by the assistant";
      img.className = "msg__image";
      item.bubble.appendChild(img);
    }
    if (entry.quickReplies && entry.quickReplies.length) {
      renderQuickReplies(item.li, entry);
    }
    els.log.appendChild(item.li);
    scrollToEnd();
  }

  /** Normalise one Rasa socket.io (or REST) bot message into a transcript entry. */
  function toEntry(message) {
    var msg = message || {};
    var entry = { who: "bot", text: typeof msg.text === "string" ? msg.text : "" };
    var replies = msg.quick_replies || msg.buttons || [];
    if (Array.isArray(replies) && replies.length) {
      entry.quickReplies = replies
        .filter(function (r) { return r && (r.title || r.payload); })
        .map(function (r) {
          return { title: String(r.title || r.payload), payload: String(r.payload || r.title) };
        });
      entry.used = null;
    }
    var att = msg.attachment;
    if (att && att.type === "image" && att.payload) {
      var src = safeUrl(att.payload.src || att.payload.url || "");
      if (src) {
        entry.image = src;
      }
    }
    if (typeof msg.image === "string" && safeUrl(msg.image)) {
      entry.image = safeUrl(msg.image);
    }
    if (typeof msg.agent === "string" && msg.agent) {
      entry.agent = msg.agent.slice(0, 80);
    }
    if (typeof msg.desk_id === "string" && msg.desk_id) {
      entry.deskId = msg.desk_id;
      entry.deskEvent = typeof msg.desk_event === "string" ? msg.desk_event : "message";
    }
    return entry;
  }

  /** Public: show one bot message (Rasa's socket.io payload shape) and keep it. */
  function renderBotMessage(message) {
    var entry = toEntry(message);
    if (!entry.text && !entry.image && !entry.quickReplies) {
      return null; // custom payloads we don't know how to show
    }
    if (entry.deskId && state.transcript.some(function (e) { return e.deskId === entry.deskId; })) {
      return null; // an agent's message already shown (the backlog after a reload)
    }
    if (entry.deskId) { // a person holds the chat until they hand it back
      state.withAgent = entry.deskEvent !== "handed_back";
    }
    state.transcript.push(entry);
    persistTranscript();
    renderBot(entry);
    return entry;
  }

  function restoreTranscript() {
    state.transcript.forEach(function (entry) {
      if (entry && entry.deskId) {
        state.withAgent = entry.deskEvent !== "handed_back";
      }
      if (entry && entry.who === "user" && typeof entry.text === "string") {
        renderUser(entry);
      } else if (entry && entry.who === "bot") {
        renderBot(entry);
      }
    });
  }

  // ------------------------------------------------------------------ status and typing
  function showStatus(text, kind) {
    clearTimeout(state.statusTimer);
    els.status.textContent = text;
    els.status.className = "chat__status chat__status--" + kind;
    els.status.hidden = false;
  }

  function hideStatus() {
    clearTimeout(state.statusTimer);
    els.status.hidden = true;
    els.status.textContent = "";
  }

  function showTyping() {
    els.typing.classList.add("chat__typing--on");
    els.typingText.textContent = "The assistant is typing…";
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, cfg.typingTimeoutMs);
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    els.typing.classList.remove("chat__typing--on");
    els.typingText.textContent = "";
  }

  // ------------------------------------------------------------------ sending
  var socket = null;

  function emitNow(text) {
    var data = { message: text, session_id: state.sessionId };
    if (state.customerToken) {
      data.customData = { customer_token: state.customerToken };
    }
    socket.emit(cfg.userEvent, data);
    if (!state.withAgent) {
      showTyping(); // the assistant answers at once; an agent types when they can
    }
  }

  /** Ask the server for a session: the one we hold (kept if it signed it) or a new one. */
  function requestSession() {
    state.ready = false;
    state.requestedId = state.sessionId;
    socket.emit("session_request", { session_id: state.sessionId });
  }

  /** Forget the conversation on screen and in storage (not the queued messages). */
  function clearTranscript() {
    state.transcript = [];
    save(LOG_KEY, null);
    els.log.textContent = "";
    hideTyping();
  }

  /** Send `text` to Rasa and show `display` (defaults to text) as the shopper's message. */
  function sendMessage(text, display) {
    var message = String(text || "").trim();
    if (!message) {
      return;
    }
    var entry = { who: "user", text: String(display || message) };
    state.transcript.push(entry);
    persistTranscript();
    renderUser(entry);
    if (state.ready) {
      emitNow(message);
    } else {
      state.pending.push(message);
      if (state.everConnected || state.offlineShown) {
        showStatus(UNREACHABLE_TEXT, "error");
        state.offlineShown = true;
      }
    }
  }

  function flushPending() {
    var queue = state.pending;
    state.pending = [];
    queue.forEach(emitNow);
  }

  // ------------------------------------------------------------------ connection
  function goOffline() {
    state.ready = false;
    hideTyping();
    showStatus(UNREACHABLE_TEXT, "error");
    state.offlineShown = true;
  }

  function connect() {
    if (typeof window.io !== "function") {
      showStatus("The chat could not load. Please reload the page.", "error");
      return;
    }
    socket = window.io(cfg.rasaUrl, {
      path: cfg.socketPath,
      transports: ["websocket", "polling"],
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      timeout: 8000
    });

    socket.on("connect", requestSession);

    socket.on("session_confirm", function (data) {
      var id = typeof data === "string" ? data : data && data.session_id;
      if (typeof id !== "string" || !id) {
        return;
      }
      // The server did not keep the id we held (its secret changed, or the id was not one
      // it issued): the conversation on screen is not the one it continues.
      var replaced = Boolean(state.requestedId) && id !== state.requestedId;
      state.sessionId = id;
      save(SESSION_KEY, id);
      state.ready = true;
      state.everConnected = true;
      if (replaced) {
        clearTranscript();
        state.pending.forEach(function (text) {
          var entry = { who: "user", text: text };
          state.transcript.push(entry);
          renderUser(entry);
        });
        persistTranscript();
        state.offlineShown = false;
        showStatus(NEW_SESSION_TEXT, "ok");
        state.statusTimer = setTimeout(hideStatus, 6000);
      } else if (state.offlineShown) {
        state.offlineShown = false;
        showStatus(RECONNECTED_TEXT, "ok");
        state.statusTimer = setTimeout(hideStatus, 3000);
      } else {
        hideStatus();
      }
      flushPending();
    });

    socket.on(cfg.botEvent, function (message) {
      if (!state.ready) {
        return; // a late reply of the conversation we just left ("New conversation")
      }
      hideTyping();
      renderBotMessage(message);
    });

    socket.on("agent_backlog", function (messages) {
      if (state.ready && Array.isArray(messages)) {
        messages.forEach(renderBotMessage);
      }
    });

    socket.on("disconnect", function (reason) {
      goOffline();
      if (reason === "io server disconnect") {
        socket.connect(); // the server closed us on purpose; socket.io won't retry alone
      }
    });

    socket.on("connect_error", goOffline);
  }

  // ------------------------------------------------------------------ UI wiring
  els.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = els.input.value;
    if (!text.trim()) {
      els.input.focus();
      return;
    }
    els.input.value = "";
    sendMessage(text);
    els.input.focus();
  });

  // A new conversation starts unidentified: the old session id is thrown away (the server
  // issues a new one), so nothing the assistant learned about the shopper carries over.
  els.restart.addEventListener("click", function () {
    state.pending = [];
    state.sessionId = null;
    save(SESSION_KEY, null);
    clearTranscript();
    if (socket && socket.connected) {
      requestSession();
    } else {
      state.ready = false; // the next connect asks for a new session
    }
    els.input.focus();
  });

  if (cfg.title) {
    els.title.textContent = cfg.title;
    document.title = cfg.title;
  }
  restoreTranscript();
  connect();
  els.input.focus();

  // Public surface: for embedding pages and the browser test.
  window.ShopChat = Object.freeze({
    renderBotMessage: renderBotMessage,
    send: function (text, display) { sendMessage(text, display); },
    sessionId: function () { return state.sessionId; },
    isConnected: function () { return state.ready; },
    /** A signed-in shopper's token (HS256 JWT from the store), or null when signed out. */
    setCustomerToken: function (token) {
      state.customerToken = typeof token === "string" && token ? token : null;
    }
  });
})();

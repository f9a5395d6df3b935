/* The rating page (DESIGN.md §10.4). It reads the invitation token from the link's fragment
 * (which browsers never send to a server), loads GET /v1/invitation, shows each instrument still
 * to fill in, posts each with its own Idempotency-Key (retried with the same key when the network
 * fails, so a retry never stores a second copy) and shows a receipt. No framework: the page must
 * stay small, load fast on a phone, and run under `script-src 'self'`. */
(() => {
  "use strict";

  const WORDS = {
    en: {
      title: "Rate your session",
      intro: "Your answers help you and your therapist see how therapy is going. There are no right or wrong answers.",
      session: "Session {n}",
      sliderHint: "Move the slider, or use the arrow keys, to answer from {min} to {max}.",
      notAnswered: "Not answered yet",
      yes: "Yes",
      no: "No",
      required: "Please answer this question.",
      rejected: "This answer was not accepted: {why}",
      missingTitle: "Some answers are missing",
      rejectedTitle: "Some answers need another look",
      send: "Send my answers",
      sending: "Sending…",
      retrying: "The connection was lost. Trying again…",
      sendFailed: "We could not send your answers. Check your connection and press the button again.",
      sent: "Sent. These answers can no longer be changed.",
      thanksTitle: "Thank you, your answers were sent",
      thanksBody: "Your clinic has received:",
      thanksNext: "Your therapist may talk with you about your answers at your next session.",
      received: "received at {time}",
      reference: "reference {ref}",
      tryAgain: "Try again",
      concernOpen: "Raise a concern",
      concernWho: "Your message goes to the people at your clinic who handle concerns, not to your therapist. Your words are never exported or sent to other systems.",
      concernUrgent: "If you or someone else is in danger now, call your local emergency number.",
      concernCategory: "What is it about? (optional)",
      concernNoCategory: "Choose a topic",
      concernMessage: "What would you like the clinic to know?",
      concernSend: "Send concern",
      concernEmpty: "Please write your concern before sending it.",
      concernSent: "Your concern was sent. Someone at the clinic who handles concerns will read it.",
      concernTooMany: "This link cannot send more concerns. Please contact the clinic directly.",
      categories: {
        relationship: "My relationship with my therapist",
        safety: "My safety",
        boundaries: "Boundaries",
        treatment: "My treatment",
        access: "Appointments or access",
        other: "Something else",
      },
      states: {
        expired: ["This link has expired", "Links to rate a session work for a limited time. Please ask your clinic for a new link."],
        revoked: ["This link is no longer valid", "Your clinic has withdrawn this link. If you still want to rate your session, please ask them for a new one."],
        used: ["Your answers were already sent", "The answers for this session have been received. Nothing more is needed. Thank you."],
        invalid: ["This link does not work", "It may be incomplete. Open it again from the message you received, or ask your clinic for a new link."],
        busy: ["Too many tries", "Please wait a minute, then try again."],
        offline: ["We cannot reach the clinic's server", "Check your connection, then try again."],
      },
    },
    es: {
      title: "Valora tu sesión",
      intro: "Tus respuestas os ayudan a ti y a tu terapeuta a ver cómo va la terapia. No hay respuestas correctas ni incorrectas.",
      session: "Sesión {n}",
      sliderHint: "Mueve el control deslizante, o usa las flechas del teclado, para responder de {min} a {max}.",
      notAnswered: "Sin responder",
      yes: "Sí",
      no: "No",
      required: "Por favor, responde a esta pregunta.",
      rejected: "No se aceptó esta respuesta: {why}",
      missingTitle: "Faltan algunas respuestas",
      rejectedTitle: "Algunas respuestas necesitan revisión",
      send: "Enviar mis respuestas",
      sending: "Enviando…",
      retrying: "Se perdió la conexión. Intentándolo de nuevo…",
      sendFailed: "No pudimos enviar tus respuestas. Comprueba tu conexión y pulsa el botón otra vez.",
      sent: "Enviado. Estas respuestas ya no se pueden cambiar.",
      thanksTitle: "Gracias, tus respuestas se enviaron",
      thanksBody: "Tu clínica ha recibido:",
      thanksNext: "Puede que tu terapeuta hable contigo sobre tus respuestas en la próxima sesión.",
      received: "recibido a las {time}",
      reference: "referencia {ref}",
      tryAgain: "Intentar de nuevo",
      concernOpen: "Comunicar una preocupación",
      concernWho: "Tu mensaje lo leen las personas de tu clínica que atienden las preocupaciones, no tu terapeuta. Tus palabras nunca se exportan ni se envían a otros sistemas.",
      concernUrgent: "Si tú u otra persona estáis en peligro ahora, llama al número de emergencias de tu zona.",
      concernCategory: "¿Sobre qué es? (opcional)",
      concernNoCategory: "Elige un tema",
      concernMessage: "¿Qué quieres que sepa la clínica?",
      concernSend: "Enviar preocupación",
      concernEmpty: "Por favor, escribe tu preocupación antes de enviarla.",
      concernSent: "Tu preocupación se envió. La leerá alguien de la clínica que atiende las preocupaciones.",
      concernTooMany: "Este enlace no puede enviar más preocupaciones. Por favor, contacta directamente con la clínica.",
      categories: {
        relationship: "Mi relación con mi terapeuta",
        safety: "Mi seguridad",
        boundaries: "Límites",
        treatment: "Mi tratamiento",
        access: "Citas o acceso",
        other: "Otra cosa",
      },
      states: {
        expired: ["Este enlace ha caducado", "Los enlaces para valorar una sesión funcionan durante un tiempo limitado. Pide a tu clínica un enlace nuevo."],
        revoked: ["Este enlace ya no es válido", "Tu clínica ha retirado este enlace. Si todavía quieres valorar tu sesión, pídele uno nuevo."],
        used: ["Tus respuestas ya se enviaron", "Las respuestas de esta sesión se han recibido. No hace falta nada más. Gracias."],
        invalid: ["Este enlace no funciona", "Puede que esté incompleto. Ábrelo de nuevo desde el mensaje que recibiste o pide a tu clínica un enlace nuevo."],
        busy: ["Demasiados intentos", "Espera un minuto y vuelve a intentarlo."],
        offline: ["No podemos conectar con el servidor de la clínica", "Comprueba tu conexión y vuelve a intentarlo."],
      },
    },
  };

  // The built-in instruments' neutral wording (no licensed text: DESIGN.md §5), where the page
  // words it better than the definition's short label, and its Spanish. An organisation's own
  // wording (an item's `display`) always comes first.
  const BUILTIN = {
    en: {
      "rupture-check": {
        items: {
          tension: ["Was there any tension, misunderstanding or problem with your therapist today?"],
          intensity: ["How strong was it?", "very slight", "very strong"],
          resolution: ["How far was it resolved by the end of the session?", "not at all", "completely"],
        },
      },
    },
    es: {
      srs: {
        name: "Escala de valoración de la sesión",
        items: {
          relationship: ["Relación"],
          goals_topics: ["Metas y temas"],
          approach_method: ["Enfoque o método"],
          overall: ["En general"],
        },
      },
      ors: {
        name: "Escala de valoración de resultados",
        items: {
          individually: ["Individualmente"],
          interpersonally: ["Interpersonalmente"],
          socially: ["Socialmente"],
          overall: ["En general"],
        },
      },
      "rupture-check": {
        name: "Comprobación tras la sesión",
        items: {
          tension: ["¿Hubo hoy alguna tensión, malentendido o problema con tu terapeuta?"],
          intensity: ["¿Qué tan fuerte fue?", "muy leve", "muy fuerte"],
          resolution: ["¿Hasta qué punto se resolvió al final de la sesión?", "nada", "por completo"],
        },
      },
    },
  };

  // Waits before each retry of a post whose answer never came (network failure, 5xx, or 409
  // while the first attempt is still being processed): about 15 s in all.
  const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000];
  // Items with more points than this are drawn as a line, others as choices. The SRS and ORS are
  // visual-analogue lines of 0-10 read to one decimal (Duncan et al. 2003, J Brief Therapy 3(1);
  // Miller et al. 2003, J Brief Therapy 2(2); reference/psychometrics.md): 101 points, a line.
  const MAX_CHOICES = 11;
  const CATEGORIES = ["relationship", "safety", "boundaries", "treatment", "access", "other"];

  const LANG = document.documentElement.lang === "es" ? "es" : "en";
  const W = WORDS[LANG];
  const TOKEN = location.hash.slice(1);
  const view = document.getElementById("view");
  const statusLine = document.getElementById("status");

  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k]));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function setStatus(text) {
    statusLine.textContent = text;
  }

  function show(state, title, ...nodes) {
    const heading = el("h1", { tabindex: -1, text: title });
    view.replaceChildren(heading, ...nodes);
    document.title = title;
    document.body.dataset.state = state;
    heading.focus();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "rating-page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function request(method, path, body, key) {
    const headers = { Authorization: "Bearer " + TOKEN, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (key) headers["Idempotency-Key"] = key;
    // Relative to the page, so a service under a path prefix works too.
    return fetch(new URL("../" + path, location.href), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  }

  // Posts until an answer comes that says what happened. `isDone` tells a 409 that means "saved
  // already" (through another tab) from one that means "still in flight".
  async function send(path, body, key, isDone) {
    for (let attempt = 0; ; attempt += 1) {
      let response = null;
      try {
        response = await request("POST", path, body, key);
      } catch (_) {
        response = null;
      }
      if (response && response.status !== 409 && response.status < 500) return response;
      if (response && response.status === 409 && isDone && (await isDone())) return "done";
      if (attempt >= RETRY_DELAYS.length) return response;
      setStatus(W.retrying);
      await sleep(RETRY_DELAYS[attempt]);
    }
  }

  async function readProblem(response) {
    try {
      return await response.json();
    } catch (_) {
      return {};
    }
  }

  function statePage(kind) {
    const [title, body] = W.states[kind];
    const nodes = [el("p", { text: body })];
    if (kind === "offline" || kind === "busy") {
      nodes.push(el("button", { type: "button", class: "primary", text: W.tryAgain, onclick: load }));
    }
    if (kind === "used") nodes.push(concernSection());
    setStatus("");
    show(kind, title, ...nodes);
  }

  async function problemPage(response) {
    const problem = await readProblem(response);
    if (response.status === 410) {
      statePage(String(problem.type || "").endsWith("invitation-revoked") ? "revoked" : "expired");
    } else if (response.status === 401) statePage("invalid");
    else if (response.status === 429) statePage("busy");
    else statePage("offline");
  }

  async function load() {
    if (!TOKEN.startsWith("inv_")) return statePage("invalid");
    let response;
    try {
      response = await request("GET", "v1/invitation");
    } catch (_) {
      return statePage("offline");
    }
    if (!response.ok) return problemPage(response);
    const invitation = await response.json();
    if (invitation.remaining.length === 0) return statePage("used");
    return ratingForm(invitation);
  }

  // Wording of an instrument and its items: the organisation's `display` in this language,
  // else the page's own neutral wording of a built-in, else the definition's label.
  function instrumentName(definition) {
    const builtin = BUILTIN[LANG][definition.code];
    return (builtin && builtin.name) || definition.name;
  }

  function wording(definition, item) {
    const display = item.display || {};
    const own = display[LANG] || Object.entries(display).find(([tag]) => tag.split("-")[0] === LANG)?.[1];
    if (own) return { text: own.text, low: own.min_label, high: own.max_label };
    const builtin = (BUILTIN[LANG][definition.code] || { items: {} }).items[item.id];
    if (builtin) return { text: builtin[0], low: builtin[1], high: builtin[2] };
    return { text: item.label };
  }

  const decimalsOf = (step) => (String(step).split(".")[1] || "").length;
  const format = (value, decimals) =>
    value.toLocaleString(LANG, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });

  function visible(question) {
    const when = question.item.when;
    if (!when) return true;
    const source = question.siblings[when.item];
    return !!source && visible(source) && source.value === when.equals;
  }

  function setError(question, message) {
    question.error.textContent = message || "";
    question.error.hidden = !message;
    for (const control of question.controls) {
      const described = [control.dataset.hint, message ? question.error.id : ""].filter(Boolean);
      if (described.length) control.setAttribute("aria-describedby", described.join(" "));
      else control.removeAttribute("aria-describedby");
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
  }

  function sliderItem(question, words) {
    const { item, id } = question;
    const decimals = decimalsOf(item.step);
    const middle = Number((item.min + (item.max - item.min) / 2).toFixed(decimals));
    const input = el("input", {
      type: "range",
      id,
      name: id,
      min: item.min,
      max: item.max,
      step: item.step,
      value: middle,
      class: "unset",
      "aria-valuetext": W.notAnswered,
    });
    const shown = el("output", { for: id, class: "value", text: W.notAnswered });
    const answer = () => {
      question.value = Number(Number(input.value).toFixed(decimals));
      input.classList.remove("unset");
      const text = format(question.value, decimals);
      input.setAttribute("aria-valuetext", text);
      shown.textContent = text;
      question.changed();
    };
    input.addEventListener("input", answer);
    input.addEventListener("change", answer);
    // A tap on the line is an answer even where it leaves the value as it was.
    input.addEventListener("pointerup", answer);
    input.addEventListener("keydown", (event) => {
      if (event.key !== "PageUp" && event.key !== "PageDown") return;
      event.preventDefault();
      const bigStep = Math.max(item.step, (item.max - item.min) / 10);
      const next = Number(input.value) + (event.key === "PageUp" ? bigStep : -bigStep);
      input.value = String(Math.min(item.max, Math.max(item.min, next)).toFixed(decimals));
      answer();
    });
    question.controls = [input];
    input.dataset.hint = question.hint.id;
    input.setAttribute("aria-describedby", question.hint.id);
    const ends = el(
      "div",
      { class: "ends", "aria-hidden": "true" },
      el("span", { text: words.low ? `${format(item.min, 0)} · ${words.low}` : format(item.min, 0) }),
      el("span", { text: words.high ? `${words.high} · ${format(item.max, 0)}` : format(item.max, 0) }),
    );
    return el(
      "div",
      { class: "item slider", id: "q-" + id },
      el("div", { class: "label-row" }, el("label", { for: id, text: words.text }), shown),
      input,
      ends,
      question.error,
    );
  }

  function choiceItem(question, words) {
    const { item, id } = question;
    const decimals = decimalsOf(item.step);
    const yesNo = item.min === 0 && item.max === 1 && item.step === 1;
    const options = el("div", { class: yesNo ? "options yes-no" : "options" });
    question.controls = [];
    const count = Math.round((item.max - item.min) / item.step) + 1;
    for (let n = 0; n < count; n += 1) {
      const value = Number((item.min + n * item.step).toFixed(decimals));
      let text = yesNo ? (value === 1 ? W.yes : W.no) : format(value, decimals);
      if (!yesNo && n === 0 && words.low) text += " · " + words.low;
      if (!yesNo && n === count - 1 && words.high) text += " · " + words.high;
      const optionId = `${id}-${n}`;
      const input = el("input", { type: "radio", id: optionId, name: id, value });
      input.addEventListener("change", () => {
        question.value = value;
        question.changed();
      });
      question.controls.push(input);
      options.append(el("label", { for: optionId, class: "option" }, input, el("span", { text })));
    }
    return el(
      "fieldset",
      { class: "item choice", id: "q-" + id },
      el("legend", { text: words.text }),
      options,
      question.error,
    );
  }

  function ratingForm(invitation) {
    const instruments = invitation.instruments
      .filter((definition) => invitation.remaining.includes(definition.code))
      .map((definition) => ({ definition, key: newKey(), questions: [], done: null }));
    const summary = el("div", { class: "summary", id: "missing", tabindex: -1, hidden: true });
    const sendButton = el("button", { type: "submit", class: "primary", text: W.send });
    const form = el("form", { novalidate: true, "aria-label": W.title });
    const refresh = () => {
      for (const instrument of instruments) {
        for (const question of instrument.questions) question.node.hidden = !visible(question);
      }
    };
    for (const instrument of instruments) {
      const { definition } = instrument;
      const headingId = "h-" + definition.code;
      const section = el("section", { class: "instrument", "aria-labelledby": headingId });
      section.append(el("h2", { id: headingId, text: instrumentName(definition) }));
      // How to answer the lines, said once per instrument (and read out by each of them).
      const line = definition.items.find((item) => (item.max - item.min) / item.step + 1 > MAX_CHOICES);
      const hint = line && el("p", { class: "hint", id: headingId + "-hint", text: fill(W.sliderHint, line) });
      if (hint) section.append(hint);
      const siblings = {};
      for (const item of definition.items) {
        const id = `${definition.code}-${item.id}`;
        const question = {
          item,
          id,
          siblings,
          hint,
          value: null,
          error: el("p", { class: "error", id: id + "-error", hidden: true }),
          changed: () => {
            setError(question, "");
            // An answered question leaves the list of missing ones.
            summary.querySelector(`li[data-for="${id}"]`)?.remove();
            if (!summary.querySelector("li")) summary.hidden = true;
            refresh();
          },
        };
        siblings[item.id] = question;
        const words = wording(definition, item);
        question.label = `${instrumentName(definition)}: ${words.text}`;
        const points = (item.max - item.min) / item.step + 1;
        question.node = points > MAX_CHOICES ? sliderItem(question, words) : choiceItem(question, words);
        instrument.questions.push(question);
        section.append(question.node);
      }
      instrument.section = section;
      form.append(section);
    }
    form.append(sendButton);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitAll(instruments, summary, sendButton);
    });
    refresh();
    show(
      "form",
      W.title,
      el("p", { class: "session", text: fill(W.session, { n: invitation.session_number }) }),
      el("p", { text: W.intro }),
      summary,
      form,
      concernSection(),
    );
  }

  function showProblems(summary, title, problems) {
    summary.replaceChildren(el("h2", { text: title }));
    const list = el("ul");
    for (const [question, message] of problems) {
      setError(question, message);
      const focus = () => question.controls[0].focus();
      list.append(
        el("li", { "data-for": question.id }, el("button", { type: "button", class: "link", text: question.label, onclick: focus })),
      );
    }
    summary.append(list);
    summary.hidden = false;
    summary.focus();
  }

  async function submitAll(instruments, summary, sendButton) {
    if (sendButton.disabled) return;
    const missing = [];
    for (const instrument of instruments) {
      for (const question of instrument.questions) {
        if (!instrument.done && visible(question) && question.item.required !== false && question.value === null) {
          missing.push([question, W.required]);
        }
      }
    }
    if (missing.length) return showProblems(summary, W.missingTitle, missing);
    summary.hidden = true;
    sendButton.disabled = true;
    sendButton.textContent = W.sending;
    setStatus(W.sending);
    const stop = (message) => {
      sendButton.disabled = false;
      sendButton.textContent = W.send;
      setStatus(message || "");
    };
    for (const instrument of instruments) {
      if (instrument.done) continue;
      const code = instrument.definition.code;
      const answers = {};
      for (const question of instrument.questions) {
        if (visible(question) && question.value !== null) answers[question.item.id] = question.value;
      }
      const isDone = async () => {
        try {
          const response = await request("GET", "v1/invitation");
          return response.ok && (await response.json()).completed.includes(code);
        } catch (_) {
          return false;
        }
      };
      const response = await send("v1/invitation/submissions", { instrument: code, answers }, instrument.key, isDone);
      if (response === "done" || (response && response.status === 201)) {
        instrument.done = response === "done" ? { instrument: code } : await response.json();
        // Stored: should a later instrument fail, this one is not sent again, so say so.
        for (const question of instrument.questions) {
          for (const control of question.controls) control.disabled = true;
        }
        instrument.section.querySelector("h2").after(el("p", { class: "sent", text: W.sent }));
      } else if (response && [401, 410, 429].includes(response.status)) {
        return problemPage(response);
      } else if (response && response.status === 422) {
        const problem = await readProblem(response);
        const rejected = [];
        for (const error of problem.errors || []) {
          const itemId = String(error.field || "").split(".").pop();
          const question = instrument.questions.find((q) => q.item.id === itemId);
          if (question) rejected.push([question, fill(W.rejected, { why: error.message })]);
        }
        // The server's own words are English: the page says it in the client's language.
        stop(rejected.length ? "" : W.sendFailed);
        return rejected.length ? showProblems(summary, W.rejectedTitle, rejected) : undefined;
      } else {
        return stop(W.sendFailed);
      }
    }
    setStatus("");
    receipt(instruments);
  }

  function receipt(instruments) {
    const list = el("ul", { class: "receipt" });
    for (const { definition, done } of instruments) {
      const parts = [];
      if (done.created_at) {
        const time = new Date(done.created_at).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
        parts.push(fill(W.received, { time }));
      }
      if (done.id) parts.push(fill(W.reference, { ref: done.id.slice(-8) }));
      list.append(el("li", {}, el("strong", { text: instrumentName(definition) }), parts.length ? el("span", { text: parts.join(", ") }) : null));
    }
    show("receipt", W.thanksTitle, el("p", { text: W.thanksBody }), list, el("p", { text: W.thanksNext }), concernSection());
  }

  function concernSection() {
    const key = newKey();
    const category = el("select", { id: "concern-category", name: "category" }, el("option", { value: "", text: W.concernNoCategory }));
    for (const name of CATEGORIES) category.append(el("option", { value: name, text: W.categories[name] }));
    const message = el("textarea", { id: "concern-message", name: "message", rows: 5, maxlength: 4000, required: true });
    const error = el("p", { class: "error", id: "concern-error", hidden: true });
    const button = el("button", { type: "submit", class: "secondary", text: W.concernSend });
    const outcome = el("p", { class: "outcome", tabindex: -1, hidden: true });
    const form = el(
      "form",
      { novalidate: true, "aria-label": W.concernOpen },
      el("label", { for: "concern-category", text: W.concernCategory }),
      category,
      el("label", { for: "concern-message", text: W.concernMessage }),
      message,
      error,
      button,
    );
    const say = (text) => {
      outcome.textContent = text;
      outcome.hidden = false;
      outcome.focus();
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (button.disabled) return;
      if (!message.value.trim()) {
        error.textContent = W.concernEmpty;
        error.hidden = false;
        message.setAttribute("aria-invalid", "true");
        message.setAttribute("aria-describedby", error.id);
        message.focus();
        return;
      }
      error.hidden = true;
      message.removeAttribute("aria-invalid");
      message.removeAttribute("aria-describedby");
      button.disabled = true;
      const body = { message: message.value };
      if (category.value) body.category = category.value;
      const response = await send("v1/invitation/concerns", body, key, null);
      setStatus("");
      if (response && response.status === 201) {
        form.remove();
        return say(W.concernSent);
      }
      button.disabled = false;
      if (response && response.status === 429) return say(W.concernTooMany);
      if (response && [401, 410].includes(response.status)) return problemPage(response);
      return say(W.sendFailed);
    });
    return el(
      "details",
      { class: "concern" },
      el("summary", { text: W.concernOpen }),
      el("p", { text: W.concernWho }),
      el("p", { text: W.concernUrgent }),
      form,
      outcome,
    );
  }

  // Another link opened in this tab differs only after '#': start again with its token.
  window.addEventListener("hashchange", () => location.reload());
  load();
})();

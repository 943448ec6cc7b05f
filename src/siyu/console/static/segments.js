// siyu console: the segment builder. Rows of conditions in groups (AND / OR, NOT), drawn from the rule's
// JSON in <textarea name=rule> and written back to it on every change; the textarea's input event makes
// HTMX ask the server for the live count. Typing JSON in the textarea redraws the rows. No build step.
(function () {
  "use strict";
  var V, T, root, textarea, tree, unsupported = false, MAX_DEPTH = 3;

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "on") Object.keys(attrs.on).forEach(function (ev) { e.addEventListener(ev, attrs.on[ev]); });
      else if (k === "text") e.textContent = attrs[k];
      else if (k === "value") e.value = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function opts(list, current) { // list of [value, label]
    return list.map(function (o) {
      var option = el("option", { value: String(o[0]), text: o[1] });
      if (String(o[0]) === String(current)) option.selected = true;
      return option;
    });
  }
  function select(list, current, onchange, cls, redraw) {
    return el("select", { "class": cls, on: { change: function (e) { onchange(e.target.value); if (redraw !== false) draw(); changed(); } } }, opts(list, current));
  }
  function input(value, oninput, attrs) {
    var a = Object.assign({ type: "text", value: value === undefined || value === null ? "" : String(value) }, attrs || {});
    a.on = { input: function (e) { oninput(e.target.value); changed(); } };
    return el("input", a);
  }
  function datalist(id, values) { return el("datalist", { id: id }, values.map(function (v) { return el("option", { value: v }); })); }
  function numberish(s) { return /^-?\d+(\.\d+)?$/.test(String(s).trim()); }
  function list(s) { return String(s).split(/[,，、]/).map(function (x) { return x.trim(); }).filter(Boolean); }

  // --- the model <-> JSON -------------------------------------------------------------------------
  function blank(kind) {
    switch (kind) {
      case "attribute": return { kind: kind, field: "region", op: "eq", value: "" };
      case "identity": return { kind: kind, identity: "wecom_external_userid", present: true };
      case "tags": return { kind: kind, tags: [], match: "any" };
      case "channel_code": return { kind: kind, codes: [], touch: "first" };
      case "event": return { kind: kind, event: "content.viewed", mode: "count", cop: "gte", count: 1, window: "last", days: 7, start: "", end: "", where: [], top: "after", tunit: "days_ago", tdate: "", tdays: 7 };
      case "computed": return { kind: kind, name: "intention_level", op: "eq", value: "" };
      case "segment": return { kind: kind, segment: V.segments.length ? V.segments[0].id : "" };
      case "interest": var first = contentTags()[0]; return { kind: kind, tag: first ? first[0] : "", atLeast: 1 };
    }
  }
  function fromJSON(raw) {
    var node, negate = false;
    while (raw && typeof raw === "object" && !Array.isArray(raw) && "not" in raw && Object.keys(raw).length === 1) { negate = !negate; raw = raw.not; }
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new Error("unsupported");
    var op = "and" in raw ? "and" : ("or" in raw ? "or" : null);
    if (op) {
      if (!Array.isArray(raw[op])) throw new Error("unsupported");
      node = { group: true, op: op, children: raw[op].map(fromJSON) };
    } else if ("attribute" in raw) {
      node = { kind: "attribute", field: raw.attribute, op: raw.op, value: "", value2: "", days: raw.days };
      if (Array.isArray(raw.value)) {
        if (raw.op === "between") { node.value = raw.value[0]; node.value2 = raw.value[1]; } else node.value = raw.value.join(", ");
      } else if ("value" in raw) node.value = raw.value;
    } else if ("identity" in raw) {
      node = { kind: "identity", identity: raw.identity, present: raw.present !== false };
    } else if ("tags" in raw) {
      node = { kind: "tags", tags: raw.tags || [], match: raw.match || "any" };
    } else if ("channel_code" in raw) {
      node = { kind: "channel_code", codes: raw.channel_code || [], touch: raw.touch || "first" };
    } else if ("event" in raw) {
      node = blank("event"); node.event = raw.event;
      node.where = (raw.where || []).map(function (w) {
        return { property: w.property, op: w.op, value: Array.isArray(w.value) ? w.value.join(", ") : ("value" in w ? w.value : "") };
      });
      if ("first" in raw || "last" in raw) {
        var t = raw.first || raw.last;
        node.mode = "first" in raw ? "first" : "last"; node.top = t.op;
        if ("date" in t) { node.tunit = "date"; node.tdate = t.date; } else { node.tunit = "days_ago"; node.tdays = t.days_ago; }
      } else {
        if (raw.performed === false) node.mode = "not";
        if (raw.count) { node.cop = raw.count.op; node.count = raw.count.value; }
        node.window = "within_last_days" in raw ? "last" : ("between" in raw ? "between" : "ever");
        if (raw.within_last_days) node.days = raw.within_last_days;
        if (raw.between) { node.start = raw.between[0]; node.end = raw.between[1]; }
      }
    } else if ("computed" in raw) {
      node = { kind: "computed", name: raw.computed, op: raw.op, value: "", value2: "" };
      if (Array.isArray(raw.value)) {
        if (raw.op === "between") { node.value = raw.value[0]; node.value2 = raw.value[1]; } else node.value = raw.value.join(", ");
      } else if ("value" in raw) node.value = raw.value;
    } else if ("segment" in raw) {
      node = { kind: "segment", segment: raw.segment };
    } else if ("interest" in raw) {
      node = { kind: "interest", tag: raw.interest, atLeast: "at_least" in raw ? raw.at_least : "" };
    } else throw new Error("unsupported");
    node.not = negate;
    return node;
  }
  function typed(value, kind) {
    if (kind === "number" || kind === "staff") return numberish(value) ? Number(value) : value;
    return value;
  }
  function valued(out, op, value, value2, kind) { // value(s) of a comparison, per operator
    if (op === "is_set" || op === "is_not_set") return out;
    if (op === "in" || op === "not_in") { var items = list(value); if (items.length) out.value = items.map(function (v) { return typed(v, kind); }); return out; }
    if (op === "between") { out.value = [typed(value, kind), typed(value2, kind)]; return out; }
    if (value !== "" && value !== null && value !== undefined) out.value = typed(value, kind);
    return out;
  }
  function propValue(v) {
    if (v === true || v === false || typeof v === "number") return v;
    var s = String(v).trim();
    if (s === "true") return true;
    if (s === "false") return false;
    return numberish(s) ? Number(s) : s;
  }
  function contentTags() { // [id, "group: tag"] of every content tag
    return (V.contentTags || []).reduce(function (all, g) { return all.concat(g.tags.map(function (t) { return [t.id, g.name + ": " + t.name]; })); }, []);
  }
  function fieldKind(name) { var f = V.fields.filter(function (x) { return x.value === name; })[0]; return f ? f.kind : "text"; }
  function computedOf(name) { return V.computed.filter(function (x) { return x.value === name; })[0] || V.computed[0]; }
  function toJSON(node) {
    var out;
    if (node.group) out = (function () { var o = {}; o[node.op] = node.children.map(toJSON); return o; })();
    else if (node.kind === "attribute") {
      out = { attribute: node.field, op: node.op };
      if (/days/.test(node.op)) { if (node.days !== "" && node.days !== undefined) out.days = Number(node.days); }
      else valued(out, node.op, node.value, node.value2, fieldKind(node.field));
    } else if (node.kind === "identity") out = { identity: node.identity, present: node.present };
    else if (node.kind === "tags") out = { tags: node.tags.map(Number), match: node.match };
    else if (node.kind === "channel_code") out = { channel_code: node.codes.map(Number), touch: node.touch };
    else if (node.kind === "event") {
      out = { event: node.event };
      var where = node.where.map(function (w) {
        var f = { property: w.property, op: w.op };
        if (w.op === "is_set" || w.op === "is_not_set") return f;
        if (w.op === "in" || w.op === "not_in") f.value = list(w.value).map(propValue);
        else if (w.value !== "") f.value = /^(gt|gte|lt|lte)$/.test(w.op) ? (numberish(w.value) ? Number(w.value) : w.value) : propValue(w.value);
        return f;
      });
      if (where.length) out.where = where;
      if (node.mode === "first" || node.mode === "last") {
        var t = { op: node.top };
        if (node.tunit === "date") t.date = node.tdate; else t.days_ago = numberish(node.tdays) ? Number(node.tdays) : node.tdays;
        out[node.mode] = t;
      } else {
        if (node.mode === "not") out.performed = false;
        else out.count = { op: node.cop, value: numberish(node.count) ? Number(node.count) : node.count };
        if (node.window === "last") out.within_last_days = numberish(node.days) ? Number(node.days) : node.days;
        if (node.window === "between") out.between = [node.start, node.end];
      }
    } else if (node.kind === "computed") {
      out = valued({ computed: node.name, op: node.op }, node.op, node.value, node.value2, computedOf(node.name).kind);
    } else if (node.kind === "segment") out = { segment: Number(node.segment) };
    else if (node.kind === "interest") {
      out = { interest: Number(node.tag) };
      if (node.atLeast !== "" && node.atLeast !== undefined) out.at_least = numberish(node.atLeast) ? Number(node.atLeast) : node.atLeast;
    }
    return node.not ? { not: out } : out;
  }

  // --- drawing -------------------------------------------------------------------------------------
  function choiceInput(choices, value, set) {
    return select([["", T.choose]].concat(choices.map(function (c) { return [c.value, c.label]; })), value, set, "value", false);
  }
  function valueInputs(node, kind, choices) { // the value part of an attribute / computed row
    var op = node.op, parts = [];
    if (op === "is_set" || op === "is_not_set") return parts;
    if (/days/.test(op)) {
      parts.push(input(node.days, function (v) { node.days = v; }, { type: "number", min: 1, "class": "n", "aria-label": T.days }), T.days);
      return parts;
    }
    var type = kind === "number" ? "number" : (kind === "date" || kind === "datetime" ? "date" : "text");
    if (op === "in" || op === "not_in") {
      parts.push(input(node.value, function (v) { node.value = v; }, { placeholder: T.values, "class": "wide", "aria-label": T.values, list: kind === "text" ? "dl-channels" : null }));
    } else if (op === "between") {
      parts.push(input(node.value, function (v) { node.value = v; }, { type: type, "class": "n", "aria-label": T.value }), T.and,
                 input(node.value2, function (v) { node.value2 = v; }, { type: type, "class": "n", "aria-label": T.value }));
    } else if (kind === "staff") {
      parts.push(choiceInput(V.staff.map(function (s) { return { value: s.id, label: s.name }; }), node.value, function (v) { node.value = v; }));
    } else if (choices && (op === "eq" || op === "ne")) {
      parts.push(choiceInput(choices, node.value, function (v) { node.value = v; }));
    } else {
      parts.push(input(node.value, function (v) { node.value = v; }, { type: type, "aria-label": T.value, "class": "value", list: node.field === "source_channel" ? "dl-channels" : null }));
    }
    return parts;
  }
  function fixOp(node, ops) { if (ops.indexOf(node.op) < 0) node.op = ops[0]; }
  function multi(items, chosen, set, label) {
    var s = el("select", { multiple: "multiple", size: Math.min(5, Math.max(2, items.length)), "aria-label": label, on: { change: function (e) {
      set(Array.prototype.filter.call(e.target.options, function (o) { return o.selected; }).map(function (o) { return Number(o.value); })); changed();
    } } });
    items.forEach(function (it) {
      var parent = s;
      if (it.group) { parent = el("optgroup", { label: it.group }); s.appendChild(parent); it.items.forEach(function (x) { add(parent, x); }); } else add(parent, it);
    });
    function add(parent, x) { var o = el("option", { value: x.id, text: x.name }); o.selected = chosen.indexOf(Number(x.id)) >= 0; parent.appendChild(o); }
    return s;
  }
  function condition(node) {
    var parts = [], k = node.kind;
    if (k === "attribute") {
      var kind = fieldKind(node.field), f = V.fields.filter(function (x) { return x.value === node.field; })[0];
      fixOp(node, V.opsByKind[kind]);
      parts.push(select(V.fields.map(function (x) { return [x.value, x.label]; }), node.field, function (v) { node.field = v; node.value = ""; }, "field"),
                 select(V.opsByKind[kind].map(function (o) { return [o, V.ops[o]]; }), node.op, function (v) { node.op = v; }, "op"));
      parts = parts.concat(valueInputs(node, kind, f && f.choices));
    } else if (k === "identity") {
      parts.push(select([["true", T.has], ["false", T.hasNot]], String(node.present), function (v) { node.present = v === "true"; }, "op", false),
                 input(node.identity, function (v) { node.identity = v.trim(); }, { list: "dl-identities", "aria-label": T.identity }));
    } else if (k === "tags") {
      parts.push(select([["any", T.matchAny], ["all", T.matchAll], ["none", T.matchNone]], node.match, function (v) { node.match = v; }, "op", false),
                 multi(V.tagGroups.map(function (g) { return { group: g.name, items: g.tags }; }), node.tags.map(Number), function (ids) { node.tags = ids; }, T.tags));
    } else if (k === "channel_code") {
      parts.push(select([["first", T.touchFirst], ["any", T.touchAny]], node.touch, function (v) { node.touch = v; }, "op", false),
                 multi(V.codes, node.codes.map(Number), function (ids) { node.codes = ids; }, T.channel_code));
    } else if (k === "event") {
      parts.push(select([["count", T.performed], ["not", T.notPerformed], ["first", T.firstTime], ["last", T.lastTime]], node.mode, function (v) { node.mode = v; }, "op"),
                 input(node.event, function (v) { node.event = v.trim(); }, { list: "dl-events", "class": "event", "aria-label": T.event }));
      if (node.mode === "count") {
        parts.push(select([["gte", T.atLeast], ["lte", T.atMost], ["eq", T.exactly]], node.cop, function (v) { node.cop = v; }, "op", false),
                   input(node.count, function (v) { node.count = v; }, { type: "number", min: 0, "class": "n", "aria-label": T.times }), T.times);
      }
      if (node.mode === "count" || node.mode === "not") {
        parts.push(select([["ever", T.ever], ["last", T.withinLast], ["between", T.betweenDates]], node.window, function (v) { node.window = v; }, "op"));
        if (node.window === "last") parts.push(input(node.days, function (v) { node.days = v; }, { type: "number", min: 1, "class": "n", "aria-label": T.days }), T.days);
        if (node.window === "between") parts.push(input(node.start, function (v) { node.start = v; }, { type: "date" }), T.and, input(node.end, function (v) { node.end = v; }, { type: "date" }));
      } else {
        parts.push(select([["before", T.before], ["after", T.after]], node.top, function (v) { node.top = v; }, "op", false),
                   select([["days_ago", T.daysAgo], ["date", T.onDate]], node.tunit, function (v) { node.tunit = v; }, "op"));
        parts.push(node.tunit === "date" ? input(node.tdate, function (v) { node.tdate = v; }, { type: "date" })
                                         : input(node.tdays, function (v) { node.tdays = v; }, { type: "number", min: 0, "class": "n", "aria-label": T.days }));
      }
    } else if (k === "computed") {
      var c = computedOf(node.name), cops = V.computedOps[c.kind];
      fixOp(node, cops);
      parts.push(select(V.computed.map(function (x) { return [x.value, x.label]; }), node.name, function (v) { node.name = v; node.value = ""; }, "field"),
                 select(cops.map(function (o) { return [o, V.ops[o]]; }), node.op, function (v) { node.op = v; }, "op"));
      parts = parts.concat(valueInputs(node, c.kind, c.choices));
    } else if (k === "segment") {
      parts.push(select(V.segments.map(function (s) { return [s.id, s.name]; }), node.segment, function (v) { node.segment = v; }, "field", false));
    } else if (k === "interest") {
      parts.push(select(contentTags(), node.tag, function (v) { node.tag = v; }, "field content-tag", false), T.interestAtLeast,
                 input(node.atLeast, function (v) { node.atLeast = v; }, { type: "number", min: 0, step: "0.1", "class": "n at-least", "aria-label": T.interestAtLeast }),
                 el("span", { "class": "muted small help", text: T.interestHelp }));
    }
    var row = el("div", { "class": "cond" }, parts);
    if (k === "event") {
      node.where.forEach(function (w, i) {
        row.appendChild(el("div", { "class": "where" }, [
          T.where.replace(/^\+\s*/, "") + ":",
          input(w.property, function (v) { w.property = v.trim(); }, { placeholder: T.property, "class": "prop", "aria-label": T.property }),
          select(V.propertyOps.map(function (o) { return [o, V.ops[o]]; }), w.op, function (v) { w.op = v; }, "op"),
          (w.op === "is_set" || w.op === "is_not_set") ? null : input(w.value, function (v) { w.value = v; }, { placeholder: w.op === "in" || w.op === "not_in" ? T.values : T.value, "class": "value", "aria-label": T.value }),
          el("button", { type: "button", "class": "link x", title: T.remove, text: "×", on: { click: function () { node.where.splice(i, 1); draw(); changed(); } } }),
        ]));
      });
      row.appendChild(el("button", { type: "button", "class": "link add-where", text: T.where, on: { click: function () {
        node.where.push({ property: "", op: "eq", value: "" }); draw(); changed();
      } } }));
    }
    return row;
  }
  function negation(node) {
    var box = el("input", { type: "checkbox", "class": "not", on: { change: function (e) { node.not = e.target.checked; draw(); changed(); } } });
    box.checked = !!node.not;
    return el("label", { "class": "not-label" + (node.not ? " on" : "") }, [box, T.not]);
  }
  function kindSelect(node, parent, index) {
    var kinds = ["attribute", "tags", "event", "computed", "interest", "identity", "channel_code", "segment"].filter(function (k) {
      return (k !== "segment" || V.segments.length) && (k !== "interest" || contentTags().length);
    });
    return select(kinds.map(function (k) { return [k, T[k]]; }), node.kind, function (v) {
      var fresh = blank(v); fresh.not = node.not; parent.children[index] = fresh;
    }, "kind");
  }
  function drawNode(node, parent, index, path, depth) {
    var here = node.not ? path + ".not" : path;
    if (node.group) {
      var box = el("div", { "class": "group depth-" + depth + (node.not ? " negated" : ""), "data-path": here });
      var head = el("div", { "class": "group-head" }, [
        depth > 0 ? negation(node) : null,
        select([["and", T.all], ["or", T.any]], node.op, function (v) { node.op = v; }, "combine"),
        depth > 0 ? el("button", { type: "button", "class": "link remove", text: T.remove, on: { click: function () { parent.children.splice(index, 1); draw(); changed(); } } }) : null,
      ]);
      box.appendChild(head);
      var kids = el("div", { "class": "children" });
      if (!node.children.length) kids.appendChild(el("p", { "class": "muted small", text: T.empty }));
      node.children.forEach(function (child, i) { kids.appendChild(drawNode(child, node, i, here + "." + node.op + "[" + i + "]", depth + 1)); });
      box.appendChild(kids);
      box.appendChild(el("div", { "class": "group-actions" }, [
        el("button", { type: "button", "class": "add-condition", text: T.addCondition, on: { click: function () { node.children.push(blank("attribute")); draw(); changed(); } } }),
        depth < MAX_DEPTH - 1 ? el("button", { type: "button", "class": "add-group", text: T.addGroup, on: { click: function () {
          node.children.push({ group: true, op: node.op === "and" ? "or" : "and", children: [blank("attribute")] }); draw(); changed();
        } } }) : null,
      ]));
      return box;
    }
    return el("div", { "class": "row-cond" + (node.not ? " negated" : ""), "data-path": here }, [
      negation(node), kindSelect(node, parent, index), condition(node),
      el("button", { type: "button", "class": "link remove", title: T.remove, text: "×", "aria-label": T.remove, on: { click: function () { parent.children.splice(index, 1); draw(); changed(); } } }),
      el("div", { "class": "row-error field-error" }),
    ]);
  }
  function draw() {
    root.textContent = "";
    if (unsupported) { root.appendChild(el("p", { "class": "notice error", text: T.unsupported })); return; }
    root.appendChild(drawNode(tree, null, 0, "$", 0));
    root.appendChild(datalist("dl-events", V.eventTypes));
    root.appendChild(datalist("dl-identities", V.identityTypes));
    root.appendChild(datalist("dl-channels", V.sourceChannels));
    markError();
  }
  function changed() {
    if (unsupported) return;
    textarea.value = JSON.stringify(toJSON(tree), null, 2);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function load(text) {
    try {
      var raw = JSON.parse(text);
      try {
        tree = fromJSON(raw);
        if (!tree.group || tree.not) tree = { group: true, op: "and", children: [tree] };
        unsupported = false;
      } catch (e) { unsupported = true; }
      root.removeAttribute("data-bad-json");
      return true;
    } catch (e) { root.setAttribute("data-bad-json", T.badJson); return false; }
  }
  function markError() { // the server's "path: reason" shown on the row it names (longest matching path)
    root.querySelectorAll(".invalid").forEach(function (n) { n.classList.remove("invalid"); });
    root.querySelectorAll(".row-error").forEach(function (n) { n.textContent = ""; });
    var box = document.querySelector("#preview [data-error-path]") || document.querySelector(".rule-error[data-error-path]");
    if (!box) return;
    var path = box.getAttribute("data-error-path"), best = null;
    root.querySelectorAll("[data-path]").forEach(function (n) {
      var p = n.getAttribute("data-path");
      if ((path === p || path.indexOf(p + ".") === 0 || path.indexOf(p + "[") === 0) && (!best || p.length > best.getAttribute("data-path").length)) best = n;
    });
    if (best) {
      best.classList.add("invalid");
      var slot = best.querySelector(":scope > .row-error");
      if (slot) slot.textContent = box.getAttribute("data-error-reason") || "";
    }
  }

  function init() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) { // e.g. delete a segment
      form.addEventListener("submit", function (e) { if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault(); });
    });
    root = document.getElementById("builder");
    textarea = document.getElementById("rule-json");
    if (!root || !textarea) return;
    var vocab = document.getElementById(root.getAttribute("data-vocab"));
    V = JSON.parse(vocab.getAttribute("data-json")); T = V.text;
    if (!load(textarea.value)) { tree = { group: true, op: "and", children: [] }; }
    draw();
    textarea.addEventListener("input", function (e) {
      if (e.isTrusted && load(textarea.value)) draw();
    });
    document.body.addEventListener("htmx:afterSwap", markError);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();

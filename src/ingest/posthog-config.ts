// What posthog-js asks for besides capture: its remote config (/array/<token>/config and
// config.js) and feature flags (/flags, and /decide for older versions). Meterline has no flags,
// recordings, surveys or heatmaps, so each answer is a constant that switches them off; it needs
// neither the key nor D1, and the SDK starts without an error.
import type { IRequest } from "itty-router";
import { invalidField, json } from "../shared/errors.js";

/**
 * PostHog's remote config, as Meterline can honour it: gzip and base64 bodies, and nothing that
 * needs storage Meterline does not have. Autocapture is off: Meterline keeps no DOM elements, so
 * clicks would only add $autocapture events to the count. `surveys` is left out on purpose: even
 * `false` makes posthog-js fetch its surveys bundle from the API host, which Meterline is.
 */
export const POSTHOG_REMOTE_CONFIG = {
	supportedCompression: ["gzip-js", "base64"],
	hasFeatureFlags: false,
	autocapture_opt_out: true,
	autocaptureExceptions: false,
	capturePerformance: false,
	captureDeadClicks: false,
	heatmaps: false,
	productTours: false,
	conversations: false,
	sessionRecording: false,
	elementsChainAsString: true,
	defaultIdentifiedOnly: true,
	isAuthenticated: false,
	toolbarParams: {},
	siteApps: [],
} as const;

/** One answer for /flags (v2) and /decide (v1–v3): no flags, and the remote config for the versions that read it there. */
export const POSTHOG_FLAGS_ANSWER = {
	...POSTHOG_REMOTE_CONFIG,
	config: { enable_collect_everything: false },
	flags: {},
	featureFlags: {},
	featureFlagPayloads: {},
	errorsWhileComputingFlags: false,
	quotaLimited: [],
} as const;

/** Project tokens are Meterline write keys: readable characters only, so one is safe to echo. */
const TOKEN = /^[\w-]{1,200}$/;
const CACHE = { "cache-control": "public, max-age=300" };

function tokenParam(request: IRequest): string {
	const token = request.params.token ?? "";
	if (!TOKEN.test(token)) throw invalidField("token", "must be a project token (a write key)");
	return token;
}

/** POST or GET /flags and /decide. The body (the person and its properties) is not needed. */
export function posthogFlags(): Response {
	return json(POSTHOG_FLAGS_ANSWER);
}

/** GET /array/:token/config: the remote config as JSON (posthog-js builds without the script loader). */
export function posthogRemoteConfig(request: IRequest): Response {
	tokenParam(request);
	return json(POSTHOG_REMOTE_CONFIG, 200, CACHE);
}

/** GET /array/:token/config.js: the remote config as the script posthog-js's loader adds to the page. */
export function posthogRemoteConfigScript(request: IRequest): Response {
	const token = tokenParam(request);
	const body = { config: POSTHOG_REMOTE_CONFIG, siteApps: [] };
	const script = `(window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {})[${JSON.stringify(token)}] = ${JSON.stringify(body)};\n`;
	return new Response(script, {
		headers: { "content-type": "application/javascript; charset=utf-8", "x-content-type-options": "nosniff", ...CACHE },
	});
}

// The config answers posthog-js asks for at start: /flags, /decide and /array/<token>/config[.js], for any origin, without a key.
import { describe, expect, it } from "vitest";
import { call } from "../helpers";
import { apiError } from "./helpers";

const ORIGIN = "https://shop.example";
const TEXT = { "content-type": "text/plain", origin: ORIGIN };

describe("posthog-js config answers", () => {
	const REMOTE_CONFIG = {
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
	};
	const FLAGS = {
		...REMOTE_CONFIG,
		config: { enable_collect_everything: false },
		flags: {},
		featureFlags: {},
		featureFlagPayloads: {},
		errorsWhileComputingFlags: false,
		quotaLimited: [],
	};

	it.each([
		["POST", "/flags/?v=2&config=true"],
		["POST", "/flags"],
		["GET", "/flags/?v=2"],
		["POST", "/decide/?v=3"],
		["GET", "/decide/"],
	])("answers %s %s with no flags, for any origin, without a key", async (method, path) => {
		const body = method === "POST" ? JSON.stringify({ token: "ml_w_whatever", distinct_id: "anon-1" }) : undefined;
		const response = await call(path, { method, body, headers: TEXT });
		expect({
			status: response.status,
			type: response.headers.get("content-type"),
			origin: response.headers.get("access-control-allow-origin"),
			body: await response.json(),
		}).toEqual({ status: 200, type: "application/json; charset=utf-8", origin: ORIGIN, body: FLAGS });
	});

	it("answers GET /array/<token>/config with the remote config", async () => {
		const response = await call("/array/ml_w_AbC-123_x/config", { headers: { origin: ORIGIN } });
		expect({
			status: response.status,
			cache: response.headers.get("cache-control"),
			origin: response.headers.get("access-control-allow-origin"),
			body: await response.json(),
		}).toEqual({ status: 200, cache: "public, max-age=300", origin: ORIGIN, body: REMOTE_CONFIG });
	});

	it("answers GET /array/<token>/config.js with the script that hands posthog-js the config", async () => {
		const response = await call("/array/ml_w_AbC-123_x/config.js");
		expect({
			status: response.status,
			type: response.headers.get("content-type"),
			nosniff: response.headers.get("x-content-type-options"),
			body: await response.text(),
		}).toEqual({
			status: 200,
			type: "application/javascript; charset=utf-8",
			nosniff: "nosniff",
			body: `(window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {})["ml_w_AbC-123_x"] = ${JSON.stringify({ config: REMOTE_CONFIG, siteApps: [] })};\n`,
		});
	});

	it("answers 400 naming token for a token that is not a key's characters", async () => {
		const response = await call("/array/%22%3Balert(1)%2F%2F/config.js");
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 400,
			body: apiError("invalid_request", "token: must be a project token (a write key)", [
				{ path: "token", message: "must be a project token (a write key)" },
			]),
		});
	});

	it("answers 405 with Allow for a POST to the remote config", async () => {
		const response = await call("/array/ml_w_x/config", { method: "POST", body: "{}" });
		expect({ status: response.status, allow: response.headers.get("allow") }).toEqual({ status: 405, allow: "GET" });
	});
});

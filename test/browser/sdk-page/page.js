// Sends through posthog-js and analytics.js to Meterline, the way a web page does; nothing but
// localhost is reachable, so every remote setting is given here (Segment's inline cdnSettings) or
// answered by Meterline itself (PostHog's remote config and flags).

/**
 * posthog-js with its defaults: its remote config from Meterline turns gzip on. Under automation
 * (navigator.webdriver) it drops every event as a bot's, so the filter is off, as PostHog advises
 * for end-to-end tests; and it flushes its queue every 250 ms instead of 3 s.
 */
function startPostHog(api_host, key, name, extra) {
	return new Promise((resolve) => {
		const config = { api_host, opt_out_useragent_filter: true, request_queue_config: { flush_interval_ms: 250 }, loaded: resolve };
		window.posthog.init(key, { ...config, ...extra }, name);
	});
}

/** Resolves once posthog-js has loaded flags from /flags (none, from Meterline). */
function flagsLoaded(instance) {
	return new Promise((resolve) => {
		instance.onFeatureFlags((flags, _variants, context) => resolve({ flags, errorsLoading: context?.errorsLoading ?? false }));
		instance.reloadFeatureFlags();
	});
}

/**
 * posthog "main" (gzip-js, the default once the remote config says so): `count` batched captures,
 * one sent at once, one by sendBeacon; posthog "plain" (compression off: JSON with a preflight,
 * and base64 beacons): `count` captures and one beacon. analytics.js: a page and `count` tracks.
 */
window.sendAll = async function ({ pipeline, posthogKey, segmentKey, count }) {
	const main = await startPostHog(pipeline, posthogKey, undefined, {});
	const plain = await startPostHog(pipeline, posthogKey, "plain", { disable_compression: true, capture_pageview: false });
	const flags = await flagsLoaded(main);
	for (let i = 0; i < count; i++) main.capture("ph_batched", { i });
	main.capture("ph_instant", {}, { send_instantly: true });
	main.capture("ph_beacon", {}, { transport: "sendBeacon" });
	for (let i = 0; i < count; i++) plain.capture("ph_plain", { i });
	plain.capture("ph_plain_beacon", {}, { transport: "sendBeacon" });

	const host = new URL(pipeline).host;
	// Segment's own host setting (in the load options, so its delivery metrics follow to /v1/m),
	// and its CDN settings inline, since they would otherwise come from cdn.segment.com.
	const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
		{ writeKey: segmentKey, cdnSettings: { integrations: { "Segment.io": { apiKey: segmentKey } } } },
		{ integrations: { "Segment.io": { apiHost: `${host}/v1`, protocol: "http" } } },
	);
	const delivered = [analytics.page("Pricing")];
	for (let i = 0; i < count; i++) delivered.push(analytics.track("Seg Track", { i }));
	const contexts = await Promise.all(delivered);
	return { flags, segmentFailures: contexts.filter((ctx) => ctx.failedDelivery()).length };
};

// UTF-8 sizes without allocating an encoded copy: queue and body limits are in bytes, not chars.

const ASCII = /^[\x00-\x7f]*$/;

/** The UTF-8 byte length of a string. */
export function utf8Length(text: string): number {
	// Almost every event's JSON is ASCII: one native scan answers for it, not a loop per character.
	if (ASCII.test(text)) return text.length;
	let bytes = text.length;
	for (let i = 0; i < text.length; i++) {
		const code = text.charCodeAt(i);
		if (code < 0x80) continue;
		if (code < 0x800) bytes += 1;
		else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
			bytes += 2; // a surrogate pair: 4 bytes for its 2 code units
			i++;
		} else bytes += 2;
	}
	return bytes;
}

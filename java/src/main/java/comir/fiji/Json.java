package comir.fiji;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the JSON the native library returns (objects, arrays, strings, numbers, booleans,
 * null) into Map, List, String, Double, Boolean and null. Plain ImageJ ships no JSON reader,
 * and the values crossing JNI are small, so this is all the plugin needs.
 */
final class Json {
	private final String s;
	private int i;

	private Json(String s) {
		this.s = s;
	}

	static Object parse(String text) {
		Json p = new Json(text);
		Object v = p.value();
		p.space();
		if (p.i != text.length()) throw p.error("text after the value");
		return v;
	}

	@SuppressWarnings("unchecked")
	static Map<String, Object> object(String text) {
		Object v = parse(text);
		if (!(v instanceof Map)) throw new ComirException("The native library returned no JSON object: " + text);
		return (Map<String, Object>) v;
	}

	/** {@code s} as a JSON string literal. */
	static String quote(String s) {
		StringBuilder b = new StringBuilder("\"");
		for (char c : s.toCharArray()) {
			if (c == '"' || c == '\\') b.append('\\').append(c);
			else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
			else b.append(c);
		}
		return b.append('"').toString();
	}

	private ComirException error(String what) {
		return new ComirException("Malformed JSON from the native library (" + what + " at " + i + ")");
	}

	private void space() {
		while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
	}

	private boolean take(char c) {
		space();
		if (i < s.length() && s.charAt(i) == c) {
			i++;
			return true;
		}
		return false;
	}

	private void expect(char c) {
		if (!take(c)) throw error("'" + c + "' expected");
	}

	private Object value() {
		space();
		if (i >= s.length()) throw error("value expected");
		char c = s.charAt(i);
		if (c == '{') {
			i++;
			Map<String, Object> m = new LinkedHashMap<String, Object>();
			if (take('}')) return m;
			do {
				space();
				String key = string();
				expect(':');
				m.put(key, value());
			} while (take(','));
			expect('}');
			return m;
		}
		if (c == '[') {
			i++;
			List<Object> l = new ArrayList<Object>();
			if (take(']')) return l;
			do l.add(value()); while (take(','));
			expect(']');
			return l;
		}
		if (c == '"') return string();
		for (String word : new String[] {"true", "false", "null"}) {
			if (s.startsWith(word, i)) {
				i += word.length();
				return word.equals("null") ? null : Boolean.valueOf(word.equals("true"));
			}
		}
		int start = i;
		while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
		try {
			return Double.valueOf(s.substring(start, i));
		} catch (NumberFormatException e) {
			throw error("number expected");
		}
	}

	private String string() {
		if (i >= s.length() || s.charAt(i) != '"') throw error("string expected");
		StringBuilder b = new StringBuilder();
		for (i++; i < s.length(); i++) {
			char c = s.charAt(i);
			if (c == '"') {
				i++;
				return b.toString();
			}
			if (c != '\\') {
				b.append(c);
				continue;
			}
			if (++i >= s.length()) break;
			char e = s.charAt(i);
			switch (e) {
				case 'n': b.append('\n'); break;
				case 't': b.append('\t'); break;
				case 'r': b.append('\r'); break;
				case 'b': b.append('\b'); break;
				case 'f': b.append('\f'); break;
				case 'u':
					if (i + 4 >= s.length()) throw error("bad \\u escape");
					b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16));
					i += 4;
					break;
				default: b.append(e); // \" \\ \/
			}
		}
		throw error("unterminated string");
	}
}

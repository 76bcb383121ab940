package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
	@Test
	public void readsWhatSerdeJsonWrites() {
		Map<String, Object> o = Json.object("{\"matrix\":[1.0,-2.5e-3,3],\"passed\":true,\"overlap\":null,"
			+ "\"reason\":\"low \\\"nmi\\\" \\u00b5m\\n\",\"matches\":[[1,2,3,4]],\"empty\":{},\"none\":[]}");
		assertEquals(Arrays.asList(1.0, -2.5e-3, 3.0), o.get("matrix"));
		assertEquals(Boolean.TRUE, o.get("passed"));
		assertTrue(o.containsKey("overlap"));
		assertNull(o.get("overlap"));
		assertEquals("low \"nmi\" µm\n", o.get("reason"));
		assertEquals(4, ((List<?>) ((List<?>) o.get("matches")).get(0)).size());
		assertTrue(((Map<?, ?>) o.get("empty")).isEmpty());
		assertTrue(((List<?>) o.get("none")).isEmpty());
	}

	@Test
	public void malformedTextIsAClearErrorNotACrash() {
		for (String bad : new String[] {"", "{", "{\"a\":}", "[1,2", "{\"a\":1} x", "\"open", "nul", "[1,]"}) {
			try {
				Json.parse(bad);
				fail("accepted " + bad);
			} catch (ComirException e) {
				assertTrue(e.getMessage(), e.getMessage().startsWith("Malformed JSON"));
			}
		}
	}
}

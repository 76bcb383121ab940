package comir.fiji;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Map;
import org.junit.Test;

/** The registration parameters: choices and defaults from the library, handed to it whole. */
public class RegisterParamsTest {
	@Test
	public void choicesAndDefaultsAreTheLibrarys() {
		Map<String, Object> c = RegisterParams.choices();
		assertArrayEquals(new String[] {"auto", "sift", "ncc", "amd", "mi"}, RegisterParams.list(c, "methods"));
		assertArrayEquals(new String[] {"rigid", "similarity", "affine", "translation"}, RegisterParams.list(c, "transforms"));
		RegisterParams d = RegisterParams.defaults();
		assertEquals("auto", d.method);
		assertEquals("rigid", d.transform);
		assertTrue("any rotation is the default of both front ends", d.anyRotation);
	}

	@Test
	public void trainingChoicesAndDefaultsAreTheLibrarys() {
		Map<String, Object> c = RegisterParams.choices();
		assertArrayEquals(new String[] {"small", "paper"}, RegisterParams.list(c, "net_sizes"));
		@SuppressWarnings("unchecked")
		Map<String, Object> d = (Map<String, Object>) c.get("train_defaults");
		assertEquals("small", d.get("size"));
		assertEquals(1000.0, (Double) d.get("steps"), 0);
		TrainParams p = TrainParams.defaults();
		assertEquals("A", p.nameA);
		assertEquals("B", p.nameB);
		assertEquals(1000, p.steps);
		assertEquals("random", p.start);
		// What the dialog sends is what the library reads back; bad values are clear errors.
		assertEquals(p.toJson(), new TrainParams("A", "B", "small", 1000, "random").toJson());
		try {
			Native.trainingEstimate("{\"params\":" + new TrainParams("A", "B", "huge", 10, "random").toJson() + ",\"channels\":[1,1]}");
			org.junit.Assert.fail("expected an error for an unknown size");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("unknown network size"));
		}
	}

	@Test
	public void theJsonIsWhatTheLibraryReadsAndBadValuesAreClearErrors() {
		Object[] planes = {new float[32 * 32]};
		String image = "{\"width\":32,\"height\":32}";
		String bad = new RegisterParams("", "nope \"quoted\"", "rigid", true).toJson();
		try {
			Native.register(planes, null, planes, null, "{\"fixed\":" + image + ",\"moving\":" + image + ",\"params\":" + bad + "}", 0);
			fail("an unknown method was accepted");
		} catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("unknown method \"nope \"quoted\"\""));
			assertEquals("unknown_choice", e.kind());
		}
		try {
			Native.register(planes, null, planes, null, "{\"fixed\":" + image + ",\"moving\":" + image + ",\"params\":{\"methd\":\"mi\"}}", 0);
			fail("a misspelt key was ignored");
		} catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("methd"));
			assertEquals("request", e.kind());
		}
	}

	/** A run cancelled with Esc reaches Java as kind "cancelled" (a status line, not an error dialog). */
	@Test
	public void aCancelledRunSaysSoByKind() {
		int n = 64;
		float[] pixels = new float[n * n];
		for (int i = 0; i < pixels.length; i++) pixels[i] = (float) Math.sin(i % n * 0.3) * (i / n % 7);
		Object[] planes = {pixels};
		String image = "{\"width\":" + n + ",\"height\":" + n + "}";
		String request = "{\"fixed\":" + image + ",\"moving\":" + image + ",\"params\":{\"method\":\"mi\"}}";
		long job = Native.newJob();
		try {
			Native.cancelJob(job);
			Native.register(planes, null, planes, null, request, job);
			fail("a cancelled job ran to the end");
		}
		catch (ComirException e) {
			assertTrue(e.cancelled());
			assertEquals("cancelled", e.getMessage());
		}
		finally {
			Native.endJob(job);
		}
	}
}

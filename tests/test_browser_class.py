"""A class in real browsers: one teacher at projector size and three students (separate browsers, one
phone-sized) join, predict, see the reveal, train; the teacher's board shows the three runs and the
prediction-against-result scatter, its CSV says what the board shows, and a reload keeps the class."""
import csv
import io
import json
import re

from browser_harness import click, go, open_app, press, set_number, wait_idle

STUDENTS = ("Ada", "Bo", "Cy")
GUESSES = (3, 12, 40)
LOAD_MS = 60_000


def chart(tab, title: str) -> list[dict]:
    """The traces of the plotly chart titled `title`: x, y and hover text, read from the chart itself."""
    return json.loads(tab.evaluate("""title => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')]
        .filter(e => e.layout && e.layout.title && e.layout.title.text.includes(title))
        .flatMap(e => e.data.map(t => ({mode: t.mode, x: t.x, y: t.y, text: t.text}))))""", title))


def points_when(tab, title: str, count: int) -> dict[str, tuple]:
    """nickname → (x, y) of the chart's markers, once it has `count` of them (the board refreshes itself)."""
    from playwright.sync_api import expect

    expect(tab.locator(".js-plotly-plot").first).to_be_visible(timeout=LOAD_MS)
    for _ in range(200):  # the page refreshes every 2 s: at most 40 s
        # plotly draws a chart once it comes into view (in one script: the refresh redraws the elements)
        tab.evaluate("() => document.querySelectorAll('[data-testid=stPlotlyChart]').forEach(e => e.scrollIntoView())")
        markers = [t for t in chart(tab, title) if t["mode"] == "markers"]
        if markers and len(markers[0]["x"]) == count:
            return {text: (x, y) for text, x, y in zip(markers[0]["text"], markers[0]["x"], markers[0]["y"],
                                                         strict=True)}
        tab.wait_for_timeout(200)
    raise AssertionError(f"{title}: never {count} points, last {chart(tab, title)}")


def student_joins_and_predicts(context, url: str, link: str, code: str, nickname: str, guess: int):
    from playwright.sync_api import expect

    tab = open_app(context, url, link, timeout=LOAD_MS)
    expect(tab.get_by_role("textbox", name="Class code")).to_have_value(code)  # the join link fills it in
    nickname_box = tab.get_by_role("textbox", name="Nickname")
    nickname_box.fill(nickname)
    click(tab, tab.get_by_role("button", name="Join"))
    answer = tab.get_by_role("spinbutton", name="Your answer")
    answer.fill(str(guess))
    click(tab, tab.get_by_role("button", name="Commit"))
    expect(tab.get_by_text("Committed.")).to_be_visible(timeout=LOAD_MS)
    return tab


def test_a_teacher_and_three_students_predict_train_and_see_the_board(chromium, streamlit_url):
    from playwright.sync_api import expect

    contexts = [chromium.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)]
    try:
        teacher = open_app(contexts[0], streamlit_url, "baseline", timeout=LOAD_MS)
        for label, value in (("Hidden layer 1 size", 32), ("Hidden layer 2 size", 16), ("Step limit (0 = none)", 20)):
            set_number(teacher, label, value)
        press(teacher, "Train baseline", LOAD_MS)
        go(teacher, "LoRA finetuning", "LoRA finetuning")
        set_number(teacher, "Steps", 5)
        press(teacher, "Train LoRA", LOAD_MS)  # the class's question is answered from this run
        experiment = teacher.url.split("?", 1)[1]
        teacher.close()
        teacher = open_app(contexts[0], streamlit_url, f"class?{experiment}", timeout=LOAD_MS)
        click(teacher, teacher.get_by_role("button", name="Start a class"))
        heading = teacher.get_by_role("heading", name=re.compile("Class code"))
        code = re.search(r"Class code: (\w+)", heading.inner_text()).group(1)
        click(teacher, teacher.get_by_role("button", name="Ask"))
        expect(teacher.get_by_role("heading", name=re.compile("how many 2s will still be wrong"))).to_be_visible()

        # each student opens a link with the class's baseline and a finetune of their own: 6, 7 and 8 steps
        assert "&steps=5&" in f"&{experiment}&"
        students = []
        for i, (nickname, guess) in enumerate(zip(STUDENTS, GUESSES, strict=True)):
            size = {"width": 390, "height": 844} if i == 0 else {"width": 1000, "height": 800}
            contexts.append(chromium.new_context(viewport=size))
            own = f"&{experiment}&".replace("&steps=5&", f"&steps={6 + i}&").strip("&")
            link = f"class?{own}&class={code}"
            students.append(student_joins_and_predicts(contexts[-1], streamlit_url, link, code, nickname, guess))
        expect(teacher.get_by_text(re.compile(rf"^{len(STUDENTS)} answer\(s\)"))).to_be_visible(timeout=LOAD_MS)
        click(teacher, teacher.get_by_role("button", name="Reveal the distribution"))
        click(teacher, teacher.get_by_role("button", name="Reveal the answer"))
        expect(teacher.get_by_text(re.compile("^Measured: "))).to_be_visible(timeout=LOAD_MS)

        for tab in students:
            click(tab, tab.get_by_role("link", name="Go to LoRA finetuning"))
            expect(tab.get_by_role("heading", level=1)).to_have_text("LoRA finetuning", timeout=LOAD_MS)
            click(tab, tab.get_by_role("button", name="Train LoRA", exact=True), LOAD_MS)

        board = points_when(teacher, "Learned against forgotten: one point per run", len(STUDENTS))
        predicted = points_when(teacher, "Prediction against result: one point per student", len(STUDENTS))
        with teacher.expect_download() as download:
            teacher.get_by_role("button", name="Board as CSV").click()
        rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
        teacher.reload()  # a new Streamlit session: the teacher's browser finds its class again
        wait_idle(teacher, LOAD_MS)
        expect(teacher.get_by_role("heading", name=re.compile(f"Class code: {code}"))).to_be_visible(timeout=LOAD_MS)
        expect(teacher.get_by_role("button", name="Board as CSV")).to_be_visible(timeout=LOAD_MS)
    finally:
        for context in contexts:
            context.close()

    from_csv = {row["nickname"]: (int(row["target_wrong"]), int(row["other_wrong"])) for row in rows}
    assert sorted(from_csv) == sorted(STUDENTS) and len({row["run_key"] for row in rows}) == len(STUDENTS)
    assert board == from_csv  # the CSV says what the board draws, run by run
    # each student's guess against their own run's errors on 2, the only digit finetuned
    assert predicted == {name: (guess, from_csv[name][0]) for name, guess in zip(STUDENTS, GUESSES, strict=True)}

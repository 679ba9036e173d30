#include <gtest/gtest.h>

#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "test_util.hpp"

using namespace saelab;

TEST(Corpus, TextParagraphsAndJsonlDocuments) {
  const std::string dir = test::make_temp_dir("corpus");
  test::write_text(dir + "/a.txt", "first line\nsame paragraph\n\n\n  \nsecond\r\n\nthird");
  test::write_text(dir + "/b.jsonl", "{\"text\": \"json doc\", \"label\": 3}\n\n{\"text\": \"another\"}\n");
  test::write_text(dir + "/README", "not corpus text");
  const auto files = expand_corpus_paths({dir});
  ASSERT_EQ(files.size(), 2u);
  CorpusReader r(files);
  std::vector<std::string> docs;
  std::string d;
  while (r.next(d)) docs.push_back(d);
  EXPECT_EQ(docs, (std::vector<std::string>{"first line\nsame paragraph", "second", "third", "json doc", "another"}));
}

TEST(Corpus, LongParagraphsAreCut) {
  const std::string dir = test::make_temp_dir("corpus");
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line number " + std::to_string(i) + "\n";
  test::write_text(dir + "/long.txt", text);
  CorpusReader r(expand_corpus_paths({dir + "/long.txt"}), 200);
  std::string d;
  int n = 0;
  size_t total = 0;
  while (r.next(d)) {
    ++n;
    EXPECT_LT(d.size(), 200u + 20u);
    total += d.size() + 1;
  }
  EXPECT_GT(n, 5);
  EXPECT_EQ(total, text.size());
}

TEST(Corpus, BadJsonlNamesFileAndLine) {
  const std::string dir = test::make_temp_dir("corpus");
  test::write_text(dir + "/bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  CorpusReader r(expand_corpus_paths({dir + "/bad.jsonl"}));
  std::string d;
  EXPECT_TRUE(r.next(d));
  try {
    r.next(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl' line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_corpus_paths({dir + "/missing.txt"}), Error);
}

TEST(Corpus, ContextsStartWithBosAndSeparateDocuments) {
  const std::string dir = test::make_temp_dir("corpus");
  test::write_text(dir + "/c.txt", "Once upon a time.\n\nThe end of a story about a dog and a cat.\n\nMore.");
  auto tok = load_hf_tokenizer(test::shared_root() + "/models/tinystories-656k/tokenizer.json");
  CorpusReader r(expand_corpus_paths({dir}));
  ContextStream s(r, *tok, 6);
  std::vector<int32_t> ctx, all;
  int n = 0;
  while (s.next(ctx)) {
    ASSERT_EQ(ctx.size(), 6u);
    EXPECT_EQ(ctx[0], tok->bos_id());
    EXPECT_NE(ctx[1], tok->bos_id());
    all.insert(all.end(), ctx.begin() + 1, ctx.end());
    ++n;
  }
  EXPECT_GT(n, 2);
  EXPECT_EQ(s.documents(), 3);
  EXPECT_NE(std::find(all.begin(), all.end(), tok->bos_id()), all.end());  // a document separator
}
